"""`python -m featurestore`: the same command line as `featurestore`."""

from featurestore.cli import main

main(prog_name="featurestore")
