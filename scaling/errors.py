"""The one exception family the command line turns into a single line and exit code 2."""


class UserError(Exception):
    """Bad input from the user (config, flags, data, checkpoint): message says what to do."""


class DataError(UserError, ValueError):
    """A dataset, file or tokenizer that cannot be used as given."""
