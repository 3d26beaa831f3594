"""python -m jenga_edge.cli: the same as jenga-edge."""

from . import main

main(prog_name="jenga-edge")
