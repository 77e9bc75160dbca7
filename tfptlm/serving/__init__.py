"""tfptlm.serving: clients for a tfptlm model served by TensorFlow Serving.

`RestClient` needs only the standard library; `GrpcClient` needs the
``serving`` extra (``grpcio`` and ``tensorflow-serving-api``). The server side
(model config and compose file for the stock ``tensorflow/serving`` image) is
in the repository's ``serving/`` folder.

Example:

>>> from tfptlm.serving import RestClient
>>> RestClient("http://localhost:8501").predict({"text": ["A gorgeous film."]})  # doctest: +SKIP
{'label': ['positive'], 'score': [0.97], 'probabilities': [[0.03, 0.97]]}
"""

from tfptlm.serving.client import (
    DEFAULT_SIGNATURE,
    GrpcClient,
    RestClient,
    ServingError,
    decode_strings,
    rest_body_columnar,
    rest_body_rows,
)

__all__ = [
    "DEFAULT_SIGNATURE",
    "GrpcClient",
    "RestClient",
    "ServingError",
    "decode_strings",
    "rest_body_columnar",
    "rest_body_rows",
]
