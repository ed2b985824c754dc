"""newsrec core: cleaning, embedding, index storage, duplicates and ranking. No web framework here.

The names below are the public API; `web/` imports nothing else from this package (a test checks).
"""
from .text.articles import Article, parse_article, read_articles
from .text.cleaning import AlsoRead, Cleaned, CleaningProfile, Removed, clean, clean_html, related_link
from .config import SETTINGS, Config, setting_bounds
from .text.dates import Published, parse_published
from .evidence.duplicates import shared_passages
from .embed.embedding import Embedder, HashingEmbedder, SentenceTransformerEmbedder, load_embedder
from .errors import ArticleNotFound, BadInput, ConfigError, IndexMismatch, IndexNotReady, NewsrecError
from .facade import Recommender
from .index.indexing import BuildReport, add_articles, build_index, delete_articles
from .ingest import ingest_runs
from .query.ranking import Candidate, Query, RankParams, rank
from .query.service import QueryService
from .index.store import IndexDir, Link, Record, Snapshot

__all__ = [
    "AlsoRead", "Article", "ArticleNotFound", "BadInput", "BuildReport", "Candidate", "Cleaned", "CleaningProfile",
    "Config", "ConfigError", "Embedder", "HashingEmbedder", "IndexDir", "IndexMismatch", "IndexNotReady", "Link",
    "NewsrecError", "Published", "Query", "QueryService", "RankParams", "Recommender", "Record", "Removed",
    "SETTINGS", "SentenceTransformerEmbedder", "Snapshot", "add_articles", "build_index", "clean", "clean_html",
    "delete_articles", "ingest_runs", "load_embedder", "parse_article", "parse_published", "rank", "read_articles", "related_link",
    "setting_bounds", "shared_passages",
]
