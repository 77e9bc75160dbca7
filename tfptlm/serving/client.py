"""Clients for a tfptlm SavedModel served by TensorFlow Serving.

`RestClient` speaks TF Serving's REST API (``POST /v1/models/<name>:predict``)
with nothing but the standard library; `GrpcClient` calls
``tensorflow.serving.PredictionService/Predict`` with the protos of the
``tensorflow-serving-api`` package (``pip install tfptlm[serving]``).

Request bodies follow TF Serving's documented JSON formats:

* columnar: ``{"signature_name": ..., "inputs": {"text": ["A gorgeous film."]}}``
  (`rest_body_columnar`), answered with ``{"outputs": {...}}``;
* row: ``{"instances": [{"text": "A gorgeous film."}]}`` (`rest_body_rows`),
  answered with ``{"predictions": [{...}, ...]}``.

Text goes as plain JSON strings; ``bytes`` go base64-encoded as
``{"b64": "..."}``, TF Serving's encoding for binary strings.

Example:

>>> client = RestClient("http://localhost:8501")                       # doctest: +SKIP
>>> client.predict({"text": ["A gorgeous film."]})["label"]            # doctest: +SKIP
['positive']
>>> grpc_client = GrpcClient("localhost:8500")                         # doctest: +SKIP
>>> grpc_client.predict({"text": ["A gorgeous film."]})["probabilities"]  # doctest: +SKIP
array([[0.03, 0.97]], dtype=float32)
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any, Mapping, Sequence

#: The signature TF Serving uses when a request names none.
DEFAULT_SIGNATURE = "serving_default"


class ServingError(RuntimeError):
    """A request that TF Serving (or the connection to it) refused.

    Attributes:
        model_name, signature_name: what was asked for.
        code: the HTTP status (REST) or ``grpc.StatusCode`` name (gRPC);
            ``None`` when the server could not be reached.
        details: the server's own message.
    """

    def __init__(self, model_name: str, signature_name: str | None, details: str, code=None, where: str = ""):
        self.model_name = model_name
        self.signature_name = signature_name or DEFAULT_SIGNATURE
        self.code = code
        self.details = details
        status = f" ({code})" if code is not None else ""
        place = f" at {where}" if where else ""
        super().__init__(
            f"TF Serving model {model_name!r}, signature {self.signature_name!r}{place} "
            f"failed{status}: {details}"
        )


# ---------------------------------------------------------------------------
# REST
# ---------------------------------------------------------------------------


def _to_json(value: Any) -> Any:
    """A tensor value in TF Serving's JSON mapping: str as is, bytes as ``{"b64": ...}``,
    numpy arrays and scalars as (nested) lists and numbers."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"b64": base64.b64encode(bytes(value)).decode("ascii")}
    if hasattr(value, "numpy") and callable(value.numpy):  # tf.Tensor
        value = value.numpy()
    if hasattr(value, "tolist"):  # numpy array or scalar
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_to_json(item) for item in value]
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    raise TypeError(f"cannot send a {type(value).__name__} to TF Serving: {value!r}")


def _from_json(value: Any) -> Any:
    """Inverse of `_to_json` for responses: ``{"b64": ...}`` objects become bytes."""
    if isinstance(value, list):
        return [_from_json(item) for item in value]
    if isinstance(value, dict):
        if set(value) == {"b64"}:
            return base64.b64decode(value["b64"])
        return {key: _from_json(item) for key, item in value.items()}
    return value


def _check_inputs(inputs: Mapping[str, Any]) -> None:
    if not isinstance(inputs, Mapping) or not inputs:
        raise ValueError("inputs must be a non-empty dict of input name -> values, e.g. {'text': [...]}")


def rest_body_columnar(inputs: Mapping[str, Any], signature_name: str | None = None) -> dict:
    """The columnar ("inputs") predict body: ``{"signature_name"?, "inputs": {name: values}}``.

    Each input keeps its natural nested form; inputs need not share a batch size.
    """
    _check_inputs(inputs)
    body: dict = {} if signature_name is None else {"signature_name": signature_name}
    body["inputs"] = {str(name): _to_json(values) for name, values in inputs.items()}
    return body


def rest_body_rows(inputs: Mapping[str, Any], signature_name: str | None = None) -> dict:
    """The row ("instances") predict body: one object per example, ``{name: value}`` each.

    All inputs must have the same 0-th (batch) dimension, as TF Serving requires.
    """
    _check_inputs(inputs)
    columns = {str(name): _to_json(values) for name, values in inputs.items()}
    sizes = {name: len(values) if isinstance(values, list) else None for name, values in columns.items()}
    if any(size is None for size in sizes.values()):
        scalars = [name for name, size in sizes.items() if size is None]
        raise ValueError(f"row format needs a batch (a list) for every input; not for {scalars}")
    if len(set(sizes.values())) != 1:
        raise ValueError(f"row format needs inputs of one batch size; got {sizes} (use the columnar format)")
    if not next(iter(sizes.values())):
        raise ValueError("row format needs at least one instance (TF Serving rejects an empty list)")
    count = next(iter(sizes.values()))
    body: dict = {} if signature_name is None else {"signature_name": signature_name}
    body["instances"] = [{name: values[i] for name, values in columns.items()} for i in range(count)]
    return body


class RestClient:
    """TF Serving's REST API for one model, with the standard library only.

    Args:
        base_url: the server, e.g. ``"http://localhost:8501"``.
        model_name: the model's name in the server's model config.
        signature_name: the signature to call (default: ``serving_default``).
        version: a model version number (default: the latest).
        timeout: seconds to wait for an answer.
    """

    def __init__(
        self,
        base_url: str,
        model_name: str = "tfptlm",
        signature_name: str | None = None,
        version: int | None = None,
        timeout: float = 10.0,
    ):
        self.base_url = base_url.rstrip("/")
        self.model_name = model_name
        self.signature_name = signature_name
        self.version = version
        self.timeout = timeout
        self._output_names: dict[str, list[str]] = {}

    @property
    def model_url(self) -> str:
        version = f"/versions/{self.version}" if self.version is not None else ""
        return f"{self.base_url}/v1/models/{self.model_name}{version}"

    def _request(self, url: str, body: dict | None, signature_name: str | None) -> dict:
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(
            url, data=data, headers={"Content-Type": "application/json"} if data else {}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as error:
            text = error.read().decode("utf-8", errors="replace")
            try:
                details = json.loads(text)["error"]
            except (ValueError, KeyError, TypeError):
                details = text or error.reason
            raise ServingError(self.model_name, signature_name, details, code=error.code, where=url) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            details = f"no answer from the server: {reason}"
            raise ServingError(self.model_name, signature_name, details, where=url) from None

    def status(self) -> dict:
        """The model status (``GET /v1/models/<name>``): versions and their states."""
        return self._request(self.model_url, None, self.signature_name)

    def metadata(self) -> dict:
        """The model metadata (``GET /v1/models/<name>/metadata``): the signature defs."""
        return self._request(f"{self.model_url}/metadata", None, self.signature_name)

    def output_names(self, signature_name: str | None = None) -> list[str]:
        """The output names of a signature, from the model metadata."""
        signature_name = signature_name or self.signature_name or DEFAULT_SIGNATURE
        if signature_name not in self._output_names:
            signatures = self.metadata()["metadata"]["signature_def"]["signature_def"]
            if signature_name not in signatures:
                raise ServingError(
                    self.model_name, signature_name, f"no such signature; the model has {sorted(signatures)}"
                )
            self._output_names[signature_name] = sorted(signatures[signature_name]["outputs"])
        return self._output_names[signature_name]

    def predict_raw(self, body: dict) -> dict:
        """POSTs a ready-made predict body and returns TF Serving's JSON answer as is."""
        signature_name = body.get("signature_name", self.signature_name)
        return self._request(f"{self.model_url}:predict", body, signature_name)

    def predict(
        self,
        inputs: Mapping[str, Any],
        signature_name: str | None = None,
        rows: bool = False,
    ) -> dict[str, list]:
        """Runs a signature on a batch: ``{input name: values}`` -> ``{output name: values}``.

        Args:
            inputs: each input's batch, e.g. ``{"text": ["A gorgeous film."]}``
                (lists, numpy arrays; str as text, bytes as binary).
            signature_name: overrides the client's signature for this call.
            rows: send the row ("instances") format instead of the columnar one.

        Returns:
            Each output as a (nested) list over the batch; binary outputs
            (names ending in ``_bytes``) as bytes.
        """
        signature_name = signature_name or self.signature_name
        if rows:
            answer = self.predict_raw(rest_body_rows(inputs, signature_name))["predictions"]
            if answer and isinstance(answer[0], dict) and set(answer[0]) != {"b64"}:
                outputs = {name: [row[name] for row in answer] for name in answer[0]}
            else:  # one output: TF Serving leaves its name out
                outputs = {self._single_output(signature_name): answer}
        else:
            answer = self.predict_raw(rest_body_columnar(inputs, signature_name))["outputs"]
            if isinstance(answer, dict) and set(answer) != {"b64"}:
                outputs = answer
            else:
                outputs = {self._single_output(signature_name): answer}
        return {name: _from_json(values) for name, values in outputs.items()}

    def _single_output(self, signature_name: str | None) -> str:
        names = self.output_names(signature_name)
        if len(names) != 1:
            raise ServingError(
                self.model_name, signature_name, f"expected one unnamed output, but the signature has {names}"
            )
        return names[0]


# ---------------------------------------------------------------------------
# gRPC
# ---------------------------------------------------------------------------


def _import_grpc():
    try:
        import grpc
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
    except ImportError as error:  # pragma: no cover - depends on the installed extras
        raise ImportError(
            "GrpcClient needs grpcio and tensorflow-serving-api: pip install 'tfptlm[serving]'"
        ) from error
    return grpc, predict_pb2, prediction_service_pb2_grpc


class GrpcClient:
    """TF Serving's gRPC ``PredictionService.Predict`` for one model.

    Args:
        target: the server, e.g. ``"localhost:8500"``.
        model_name: the model's name in the server's model config.
        version: a model version number (default: the latest).
        channel: a ready ``grpc.Channel`` (e.g. a secure one); default an
            insecure channel to ``target``.
    """

    def __init__(self, target: str, model_name: str = "tfptlm", version: int | None = None, channel=None):
        grpc, self._predict_pb2, service = _import_grpc()
        self._grpc = grpc
        self.target = target
        self.model_name = model_name
        self.version = version
        self._own_channel = channel is None
        self.channel = channel if channel is not None else grpc.insecure_channel(target)
        self._stub = service.PredictionServiceStub(self.channel)

    def close(self) -> None:
        """Closes the channel (if this client opened it)."""
        if self._own_channel:
            self.channel.close()

    def __enter__(self) -> "GrpcClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def request(
        self,
        inputs: Mapping[str, Any],
        signature_name: str = DEFAULT_SIGNATURE,
        output_filter: Sequence[str] | None = None,
    ):
        """The ``PredictRequest`` proto for ``inputs`` (each made with ``tf.make_tensor_proto``).

        Python str lists become DT_STRING (UTF-8), Python int lists DT_INT32 and
        float lists DT_FLOAT; numpy arrays keep their dtype (use int32 for the
        ``serve_tokens`` signature).
        """
        import tensorflow as tf

        _check_inputs(inputs)
        request = self._predict_pb2.PredictRequest()
        request.model_spec.name = self.model_name
        request.model_spec.signature_name = signature_name
        if self.version is not None:
            request.model_spec.version.value = int(self.version)
        for name, values in inputs.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(values))
        request.output_filter.extend(output_filter or [])
        return request

    def predict(
        self,
        inputs: Mapping[str, Any],
        signature_name: str = DEFAULT_SIGNATURE,
        timeout: float = 10.0,
        output_filter: Sequence[str] | None = None,
    ) -> dict:
        """Runs a signature on a batch: ``{input name: values}`` -> ``{output name: np.ndarray}``.

        String outputs come back as numpy object arrays of bytes (see `decode_strings`).
        Raises `ServingError` (with the gRPC status code name) when the server refuses.
        """
        import tensorflow as tf

        request = self.request(inputs, signature_name, output_filter)
        try:
            response = self._stub.Predict(request, timeout=timeout)
        except self._grpc.RpcError as error:
            code = error.code() if hasattr(error, "code") else None
            details = error.details() if hasattr(error, "details") else str(error)
            raise ServingError(
                self.model_name, signature_name, details, code=getattr(code, "name", code), where=self.target
            ) from None
        return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}


def decode_strings(outputs: Mapping[str, Any]) -> dict:
    """Outputs with byte strings decoded as UTF-8 (numpy arrays of bytes become str arrays)."""
    import numpy as np

    def decode(item):
        return item.decode("utf-8") if isinstance(item, bytes) else item

    decoded = {}
    for name, value in outputs.items():
        array = np.asarray(value)
        if array.dtype == object or array.dtype.kind == "S":
            array = np.array([decode(item) for item in array.ravel()], dtype=str).reshape(array.shape)
        decoded[name] = array
    return decoded
