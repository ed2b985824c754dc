"""newsrec core: cleaning, embedding, index storage, duplicates and ranking. No web framework here."""
from .articles import Article, parse_article, read_articles
from .cleaning import AlsoRead, Cleaned, CleaningProfile, Removed, clean, clean_html
from .config import SETTINGS, Config
from .embedding import Embedder, HashingEmbedder, SentenceTransformerEmbedder, load_embedder
from .errors import ArticleNotFound, BadInput, ConfigError, IndexMismatch, IndexNotReady, NewsrecError
from .indexing import add_articles, build_index, delete_articles
from .ranking import Candidate, RankParams, rank
from .service import Recommender
from .store import IndexDir, Snapshot

__all__ = [
    "AlsoRead", "Article", "ArticleNotFound", "BadInput", "Candidate", "Cleaned", "CleaningProfile", "Config",
    "ConfigError", "Embedder", "HashingEmbedder", "IndexDir", "IndexMismatch", "IndexNotReady", "NewsrecError",
    "RankParams", "Recommender", "Removed", "SETTINGS", "SentenceTransformerEmbedder", "Snapshot",
    "add_articles", "build_index", "clean", "clean_html", "delete_articles", "load_embedder",
    "parse_article", "rank", "read_articles",
]
