"""A run's checkpoints, in one place (docs/checkpoints.md):

manager.py  `Checkpoints`, the orbax CheckpointManager of a run directory (async saves,
            retention, leftover temporary steps, damaged steps moved aside)
compat.py   what must agree between a checkpoint and the run restoring it (parameter paths
            and shapes, tokenizer, config changes, the environment of a bit-exact resume)
noise.py    orbax's own output after a failed save it reports in one line, held back
load.py     `load_run`: a trained run read back for inference (generate, eval, translate,
            convert --to-hf), its parameters restored sharded on this host's mesh

Training resumes through the manager (scaling/train/run.py); every inference command loads a
run through `load_run`.
"""
