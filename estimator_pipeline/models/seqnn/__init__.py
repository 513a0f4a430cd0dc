"""basenji's SeqNN: the blocks (blocks.py, one name -> function table), the network
built from a params file and the Model around it (network.py), and basenji's losses
and streaming metrics (metrics.py)."""
