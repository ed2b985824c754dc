"""Keep an index fresh from the site itself: sources (`sources`) fetched politely (`fetch`), state beside
the snapshots (`state`), one run at a time (`run`)."""
from recommender.ingest.fetch import Fetcher, Politeness, Source
from recommender.ingest.run import run_forever, run_ingest
from recommender.ingest.sources import discover
from recommender.ingest.state import IngestLock, IngestReport, IngestState, ingest_runs

__all__ = ["Fetcher", "IngestLock", "IngestReport", "IngestState", "Politeness", "Source", "discover", "ingest_runs",
           "run_forever", "run_ingest"]
