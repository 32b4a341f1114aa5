"""The fidelity loop's analysis side: read HAR files (streamed), check exchanges against the
specs, replay them against fresh in-process mocks and report where the vendor, the specs and the
mock disagree (`loyalty-mock drift`). Everything here but `replay` is pure (no aiohttp)."""
