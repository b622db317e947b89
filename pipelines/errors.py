"""Every error class of WalkRank, each carrying the fix in its message."""


class WalkRankError(Exception):
    """Base class: the CLI prints the message (and hint) as one line, not a stack trace."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        msg = super().__str__()
        return f"{msg}\n  hint: {self.hint}" if self.hint else msg


class ConfigError(WalkRankError):
    """Unknown key, wrong type or invalid value in a config file or --set override."""


class TableNotCommittedError(WalkRankError):
    """A table was read that has no _manifest.json (never written, or its writer was interrupted)."""


class InputFormatError(WalkRankError):
    """An input file cannot be read in the requested format."""


class StageOrderError(WalkRankError):
    """A stage's input table is neither committed nor produced by an earlier selected stage."""


class RunLockedError(WalkRankError):
    """Another process is writing the same run."""


class DiskFullError(WalkRankError):
    """The filesystem of the run filled up during a write; committed tables are untouched."""


class GraphFramesMissingError(WalkRankError):
    """The GraphFrames JAR is not on the Spark classpath (its Python package alone is not enough)."""


class ModelNotFoundError(WalkRankError):
    """An LLM named by llm.model is neither a local folder nor in the offline cache."""


class RunDirError(WalkRankError):
    """A run id or run directory that would write outside --out, or over files WalkRank did not write."""


class InjectedFaultError(WalkRankError):
    """A fault injected on purpose (WALKRANK_FAULT=<point>:raise) for fault tests."""


class TableDamagedError(WalkRankError):
    """A committed table whose manifest does not parse, or whose listed data files are missing
    or of another size than the manifest says."""


class StorageError(WalkRankError):
    """A store cannot do what a run needs of it (e.g. a lock without conditional writes)."""
