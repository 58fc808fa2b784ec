"""The ground floor: the contract (feature keys, labels, signatures,
artifact file names) and the settings and option declarations every other
floor imports. Imports nothing from this repository."""
