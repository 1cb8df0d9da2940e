"""The one error type of segment_data: what is wrong, with which file, and what to do next."""


class DataError(Exception):
    """A user-facing failure of fetching, converting or loading the data.

    exit_code follows segment's table where it applies: 3 a source or cached file is missing, unreadable or does
    not verify; 5 the cache folder cannot be written.
    """

    def __init__(self, message: str, exit_code: int = 3):
        super().__init__(message)
        self.exit_code = exit_code
