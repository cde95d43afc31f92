"""`scaling bench`: one module per benchmark (train, data, compile, eval, torch_reference,
prepare); scaling/commands/bench.py parses the flags and picks one. Never run in CI."""
