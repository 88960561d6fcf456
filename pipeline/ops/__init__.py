"""Operations: the topic plan (``topics describe|apply``) and ``doctor``."""
