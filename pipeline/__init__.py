"""Pure image stages of idphoto.

decode -> detect -> segment -> refine (matte) -> geometry -> composite -> encode -> sheet/report.
Functions take and return values (NumPy arrays, PIL images of a stated mode, frozen dataclasses);
no Celery, Flask, boto3, environment reads or file I/O beyond loading a model from a given path.
"""
