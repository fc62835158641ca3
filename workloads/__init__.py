"""The seed's workloads, as importable modules (each also runs as a script on a Ray cluster)."""
