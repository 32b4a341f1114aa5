"""pytest plugin (entry point `pytest11`) of the contract suite. Options and fixtures arrive with
the contract-suite issue; registering the entry point now keeps installs stable."""
