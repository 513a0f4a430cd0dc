"""What users do with a trained model, above training: analyses run by export/ programs.

  python -m export.variants --saved_model=runs/cage/export/best --fasta=genome.fa \
      --vcf=variants.vcf --output_dir=out/
"""
