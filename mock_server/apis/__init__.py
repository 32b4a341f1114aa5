"""One package per vendor API. `registry.definitions()` maps each slug to its `ApiDefinition`."""
