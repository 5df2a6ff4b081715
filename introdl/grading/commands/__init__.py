"""The `introdl` commands, one module each; `cli.py` parses arguments and calls them."""
