"""The `scaling` commands, one module each: `add_arguments(parser)` declares its flags and
`run(args) -> int` checks them and calls the code that does the work (imported lazily,
so that `--help` and a bad flag never load JAX). scaling/cli.py is the table of them."""
