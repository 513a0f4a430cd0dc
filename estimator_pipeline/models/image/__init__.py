"""tf-slim image classifiers: the nets (slim_nets.py), the Model around them
(classifier.py), what an export answers (outputs.py) and their summaries."""
