"""The seed's workloads, as importable modules (each also runs as a script on a Ray cluster)."""

import time

# When this driver started (epoch seconds, before numpy and Ray are imported): the manifest
# carries it and the result line its end, so the runner can tell the driver's own time from
# its own overhead (submission, scheduling, log collection).
STARTED = time.time()
