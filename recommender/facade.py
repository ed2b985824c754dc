"""`Recommender`: the one object the web app, the CLI and the evaluations hold.

It is the query service (service.QueryService) plus the writes: build a new index, add or replace
articles, delete them. Each write publishes a new snapshot through the indexer and swaps it in at
once; a server's other workers pick it up through the CURRENT pointer as usual.
"""
from __future__ import annotations

from typing import Callable, Iterable, Sequence

from recommender.text.articles import Article
from recommender.errors import ConfigError
from recommender.index.indexing import BuildReport, add_articles, build_index, delete_articles
from recommender.query.service import QueryService

__all__ = ["Recommender"]


class Recommender(QueryService):
    """Queries and writes for one index directory (see QueryService for the read-only mode)."""

    def _writer(self):
        if self.read_only or self.embedder is None:
            raise ConfigError("this index was opened read-only: open it with a model to add or delete articles")
        return self.embedder

    def build(self, articles: Iterable[Article], *, progress: bool = False,
              log: Callable[[str], None] | None = None) -> BuildReport:
        """A new index from these articles alone (the previous snapshot stays until this one is published)."""
        report = build_index(articles, self.index_dir.path, self._writer(), self.config, progress=progress, log=log)
        self._swap_in()
        return report

    def add(self, articles: Iterable[Article], *, progress: bool = False, remove: Sequence[str] = ()) -> BuildReport:
        """Add or replace (by id) articles and remove the ids in `remove`: one new snapshot, nothing
        already indexed is re-embedded."""
        report = add_articles(self.index_dir.path, articles, self._writer(), self.config, progress=progress,
                              remove=remove)
        self._swap_in()
        return report

    def delete(self, ids: Sequence[str]) -> BuildReport:
        """Remove articles by id (`report.skipped` lists ids that were not there)."""
        report = delete_articles(self.index_dir.path, ids, self._writer(), self.config)
        self._swap_in()
        return report

    def _swap_in(self) -> None:
        if self.current is None:
            self.load()
        else:
            self.maybe_reload(force=True)
