"""TF Serving: the model config and compose file, the REST bodies, and both clients end to end.

The clients talk to in-process stand-ins for the model server that run the
exported SavedModel: a real ``grpc.server`` implementing tensorflow-serving-api's
``PredictionServiceServicer``, and an ``http.server`` emulating
``/v1/models/<name>:predict`` (row and columnar formats, as TF Serving's
``json_tensor.cc`` reads and writes them). Answers must equal the Keras model's.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer ops the SavedModel uses)
import yaml
from tensorflow.core.framework import types_pb2

from tfptlm.serving import (
    GrpcClient,
    RestClient,
    ServingError,
    decode_strings,
    rest_body_columnar,
    rest_body_rows,
)

try:
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
except ImportError:  # the `serving` extra is not installed
    grpc = None

needs_grpc = pytest.mark.skipif(
    grpc is None, reason="needs grpcio and tensorflow-serving-api (pip install 'tfptlm[serving]')"
)

SERVING_DIR = Path(__file__).resolve().parents[1] / "serving"
MODEL = "tfptlm"
TOKEN_INPUTS = ("token_ids", "segment_ids", "padding_mask")
TEXTS = [
    "A gorgeous, witty film.",
    "the movie was dull and bad !",
    "",
    "Emoji 🎬🍿 and crème brûlée",
    "混合 scripts: 北京",
]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + (
    "a gorgeous witty film the movie was dull and bad good ##s ##ly , . !".split()
)


# ---------------------------------------------------------------------------
# Fixtures: one tiny classifier, exported once; a one-output toy model
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(Keras model as loaded for use, loaded SavedModel, export version) of a tiny classifier."""
    from tfptlm.config import FinetuneDataConfig
    from tfptlm.export import export_saved_model
    from tfptlm.finetuning import load_finetuned
    from tfptlm.finetuning.run import RECIPES, save_finetuned
    from tfptlm.models.bert import BertBackbone
    from tfptlm.tasks import TextClassifier
    from tfptlm.tokenizers import WordPieceTokenizer

    root = tmp_path_factory.mktemp("serving")
    backbone = BertBackbone(
        vocabulary_size=len(VOCAB),
        num_layers=2,
        num_heads=2,
        hidden_dim=32,
        intermediate_dim=64,
        max_sequence_length=64,
    )
    classifier = TextClassifier(backbone, ["negative", "positive"])
    save_finetuned(
        classifier,
        WordPieceTokenizer(VOCAB),
        RECIPES["text_classification"],
        FinetuneDataConfig(sequence_length=32),
        root / "model",
    )
    # Parity with Keras is export's own test; here the clients are compared with Keras.
    path = export_saved_model(root / "model", root / "export", check=False)
    return load_finetuned(root / "model"), tf.saved_model.load(str(path)), int(path.name)


class _HalfPlusTwo(tf.Module):
    """One-output model (TF Serving then omits the output name) plus a bytes signature."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def half_plus_two(self, x):
        return {"y": x * 0.5 + 2.0}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="data")])
    def echo(self, data):
        return {"data_bytes": data, "length": tf.strings.length(data)}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    path = tmp_path_factory.mktemp("toy") / "1"
    module = _HalfPlusTwo()
    tf.saved_model.save(
        module, str(path), signatures={"serving_default": module.half_plus_two, "echo": module.echo}
    )
    return tf.saved_model.load(str(path)), 1


@pytest.fixture(scope="module")
def models(exported, toy):
    """What the stand-in servers serve: name -> (version, loaded SavedModel)."""
    _, loaded, version = exported
    return {MODEL: (version, loaded), "half": (toy[1], toy[0])}


# ---------------------------------------------------------------------------
# A REST stand-in for the model server
# ---------------------------------------------------------------------------


class _RestError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _is_b64(value) -> bool:
    return isinstance(value, dict) and set(value) == {"b64"}


def _decode_json_value(value, dtype: tf.DType):
    if isinstance(value, list):
        return [_decode_json_value(item, dtype) for item in value]
    if _is_b64(value):
        return base64.b64decode(value["b64"])
    if dtype == tf.string:
        if not isinstance(value, str):
            raise _RestError(400, f"expected a string, got {value!r}")
        return value.encode("utf-8")
    return value


def _encode_json_value(value, as_bytes: bool):
    if isinstance(value, list):
        return [_encode_json_value(item, as_bytes) for item in value]
    if isinstance(value, bytes):
        if as_bytes:
            return {"b64": base64.b64encode(value).decode("ascii")}
        return value.decode("utf-8")
    return value


def _signature(loaded, name: str | None):
    name = name or "serving_default"
    if name not in loaded.signatures:
        raise _RestError(400, f'Serving signature name: "{name}" not found in signature def')
    function = loaded.signatures[name]
    return function, function.structured_input_signature[1]


def _tensors(columns: dict, specs: dict) -> dict:
    """Each input's JSON values as a tensor of its signature dtype."""
    return {
        name: tf.constant(_decode_json_value(values, specs[name].dtype), specs[name].dtype)
        for name, values in columns.items()
    }


def _rest_inputs(body: dict, specs: dict) -> tuple[dict, str]:
    """Signature inputs from a predict body, following TF Serving's rules for both formats."""
    if "instances" in body and "inputs" in body:
        raise _RestError(400, "expecting only one of 'inputs' or 'instances' keys to exist")
    names = sorted(specs)
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise _RestError(400, "'instances' must be a non-empty list")
        if isinstance(instances[0], dict) and not _is_b64(instances[0]):
            for index, instance in enumerate(instances):
                if not isinstance(instance, dict) or sorted(instance) != names:
                    raise _RestError(400, f"element {index} of 'instances': keys must be equal to {names}")
            columns = {name: [instance[name] for instance in instances] for name in names}
        elif len(names) == 1:
            columns = {names[0]: instances}
        else:
            raise _RestError(400, "instances is a plain list, but expecting list of objects")
        return _tensors(columns, specs), "row"
    if "inputs" in body:
        given = body["inputs"]
        if isinstance(given, dict) and not _is_b64(given):
            missing = [name for name in names if name not in given]
            if missing:
                raise _RestError(400, f"Missing named input: {missing[0]} in 'inputs' object.")
            columns = {name: given[name] for name in names}
        elif len(names) == 1:
            columns = {names[0]: given}
        else:
            raise _RestError(400, "inputs is a plain value/list, but expecting an object")
        return _tensors(columns, specs), "columnar"
    raise _RestError(400, "Missing 'inputs' or 'instances' key")


def _rest_outputs(outputs: dict, layout: str) -> dict:
    """TF Serving's JSON answer: names left out when there is one output; `_bytes` outputs as b64."""
    values = {
        name: _encode_json_value(tensor.numpy().tolist(), name.endswith("_bytes"))
        for name, tensor in outputs.items()
    }
    if layout == "columnar":
        return {"outputs": next(iter(values.values())) if len(values) == 1 else values}
    batch = len(next(iter(values.values())))
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    return {"predictions": [{name: column[i] for name, column in values.items()} for i in range(batch)]}


def _rest_handler(models: dict):
    model_path = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+))?(/metadata|:predict)?$")

    def find(name: str, version: str | None):
        if name not in models or (version is not None and int(version) != models[name][0]):
            wanted = f"Specific({name}, {version})" if version else f"Latest({name})"
            raise _RestError(404, f"Servable not found for request: {wanted}")
        return models[name]

    def tensor_info(spec) -> dict:
        dims = [{"size": str(-1 if d is None else d)} for d in spec.shape.as_list()]
        return {"dtype": types_pb2.DataType.Name(spec.dtype.as_datatype_enum), "tensor_shape": {"dim": dims}}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
            pass

        def _reply(self, status: int, payload: dict) -> None:
            data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _route(self, post: bool) -> dict:
            match = model_path.match(self.path)
            if not match or (match.group(3) == ":predict") != post:
                raise _RestError(404, f"Malformed request: {self.command} {self.path}")
            name, version, verb = match.groups()
            number, loaded = find(name, version)
            if verb == "/metadata":
                signatures = {
                    key: {
                        "inputs": {n: tensor_info(s) for n, s in f.structured_input_signature[1].items()},
                        "outputs": {n: tensor_info(s) for n, s in f.structured_outputs.items()},
                        "method_name": "tensorflow/serving/predict",
                    }
                    for key, f in loaded.signatures.items()
                }
                return {
                    "model_spec": {"name": name, "signature_name": "", "version": str(number)},
                    "metadata": {"signature_def": {"signature_def": signatures}},
                }
            if verb is None:
                ok = {"error_code": "OK", "error_message": ""}
                status = {"version": str(number), "state": "AVAILABLE", "status": ok}
                return {"model_version_status": [status]}
            try:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])).decode("utf-8"))
            except ValueError as error:
                raise _RestError(400, f"JSON Parse error: {error}")
            if not isinstance(body, dict):
                raise _RestError(400, "JSON Value: is not object")
            function, specs = _signature(loaded, body.get("signature_name"))
            inputs, layout = _rest_inputs(body, specs)
            return _rest_outputs(function(**inputs), layout)

        def _serve(self, post: bool) -> None:
            try:
                self._reply(200, self._route(post))
            except _RestError as error:
                self._reply(error.status, {"error": str(error)})
            except (tf.errors.OpError, ValueError, TypeError) as error:  # bad values or shapes
                self._reply(400, {"error": str(error)})

        def do_GET(self):
            self._serve(post=False)

        def do_POST(self):
            self._serve(post=True)

    return Handler


@pytest.fixture(scope="module")
def rest_url(models):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _rest_handler(models))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


# ---------------------------------------------------------------------------
# A gRPC stand-in for the model server
# ---------------------------------------------------------------------------


def _prediction_service(models: dict):
    """A ``PredictionServiceServicer`` that runs SavedModel signatures, like the model server."""

    class SavedModelPredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            spec = request.model_spec
            entry = models.get(spec.name)
            if entry is None or (spec.HasField("version") and spec.version.value != entry[0]):
                pinned = spec.HasField("version")
                wanted = f"Specific({spec.name}, {spec.version.value})" if pinned else f"Latest({spec.name})"
                context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {wanted}")
            version, loaded = entry
            signature_name = spec.signature_name or "serving_default"
            if signature_name not in loaded.signatures:
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, f'Serving signature key "{signature_name}" not found.'
                )
            function = loaded.signatures[signature_name]
            specs = function.structured_input_signature[1]
            if sorted(request.inputs) != sorted(specs):
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"input names {sorted(request.inputs)} do not match the signature's {sorted(specs)}",
                )
            inputs = {}
            for name, input_spec in specs.items():
                proto = request.inputs[name]
                if tf.dtypes.as_dtype(proto.dtype) != input_spec.dtype:
                    context.abort(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"Expects arg {name} to be {input_spec.dtype.name} but "
                        f"{tf.dtypes.as_dtype(proto.dtype).name} is provided",
                    )
                inputs[name] = tf.constant(tf.make_ndarray(proto), input_spec.dtype)
            try:
                outputs = function(**inputs)
                error = None
            except (tf.errors.OpError, ValueError) as failure:
                error = str(failure)
            if error is not None:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, error)
            names = list(request.output_filter) or list(outputs)
            unknown = [name for name in names if name not in outputs]
            if unknown:
                message = f"output tensor alias not found in signature: {unknown[0]}"
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, message)
            response = predict_pb2.PredictResponse()
            response.model_spec.name = spec.name
            response.model_spec.signature_name = signature_name
            response.model_spec.version.value = version
            for name in names:
                response.outputs[name].CopyFrom(tf.make_tensor_proto(outputs[name].numpy()))
            return response

    return SavedModelPredictionService()


@pytest.fixture(scope="module")
def grpc_target(models):
    if grpc is None:
        pytest.skip("needs grpcio and tensorflow-serving-api")
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(_prediction_service(models), server)
    port = server.add_insecure_port("127.0.0.1:0")  # a free port, chosen by the OS
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(grace=None)


@pytest.fixture(scope="module")
def keras_answers(exported):
    """The Keras model's labels and probabilities for `TEXTS` (one `classify` call: it is slow)."""
    model, _, _ = exported
    answers = model.classify(TEXTS)
    labels = [answer["label"] for answer in answers]
    probabilities = np.array([[a["probabilities"][name] for name in model.label_names] for a in answers])
    return labels, probabilities


def _token_inputs(model, texts) -> dict:
    """The ``serve_tokens`` inputs for texts, from the model's own preprocessor (int32 arrays)."""
    features = model.preprocessor(tf.constant(texts))
    return {name: np.asarray(features[name]).astype(np.int32) for name in TOKEN_INPUTS}


# ---------------------------------------------------------------------------
# Config and compose files
# ---------------------------------------------------------------------------


@needs_grpc
def test_models_config_is_a_model_server_config():
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = text_format.Parse(
        (SERVING_DIR / "models.config").read_text(), model_server_config_pb2.ModelServerConfig()
    )
    (model,) = config.model_config_list.config
    assert (model.name, model.base_path, model.model_platform) == (MODEL, "/models/tfptlm", "tensorflow")


def test_compose_runs_the_stock_image_on_the_export():
    compose = yaml.safe_load((SERVING_DIR / "docker-compose.yml").read_text())
    (service,) = compose["services"].values()
    image = re.fullmatch(r"\$\{TF_SERVING_IMAGE:-(.+)\}", service["image"]).group(1)
    assert image == "tensorflow/serving:2.21.0"
    assert sorted(service["ports"]) == ["8500:8500", "8501:8501"]
    mounts = {volume.rsplit(":", 2)[1]: volume for volume in service["volumes"]}
    config_text = (SERVING_DIR / "models.config").read_text()
    base_path = re.search(r'base_path:\s*"([^"]+)"', config_text).group(1)
    assert base_path in mounts and mounts[base_path].endswith(":ro")
    assert "--model_config_file=/models/models.config" in service["command"]
    assert mounts["/models/models.config"].startswith("./models.config:")
    assert (SERVING_DIR / "models.config").is_file()


# ---------------------------------------------------------------------------
# REST bodies: TF Serving's documented examples
# ---------------------------------------------------------------------------


def test_rest_bodies_match_the_documented_formats():
    # The row and columnar examples of TF Serving's REST API guide.
    inputs = {
        "tag": ["foo", "bar"],
        "signal": [[1, 2, 3, 4, 5], [3, 4, 1, 2, 5]],
        "sensor": [[[1, 2], [3, 4]], [[4, 5], [6, 8]]],
    }
    assert rest_body_rows(inputs) == {
        "instances": [
            {"tag": "foo", "signal": [1, 2, 3, 4, 5], "sensor": [[1, 2], [3, 4]]},
            {"tag": "bar", "signal": [3, 4, 1, 2, 5], "sensor": [[4, 5], [6, 8]]},
        ]
    }
    assert rest_body_columnar(inputs) == {"inputs": inputs}
    # numpy arrays come out as the same plain JSON
    as_numpy = {name: np.array(values) for name, values in inputs.items()}
    assert json.loads(json.dumps(rest_body_columnar(as_numpy))) == {"inputs": inputs}
    # signature_name is included only when given
    body = rest_body_columnar({"token_ids": np.array([[2, 7, 3]], np.int32)}, "serve_tokens")
    assert body == {"signature_name": "serve_tokens", "inputs": {"token_ids": [[2, 7, 3]]}}


def test_rest_bodies_send_text_as_strings_and_bytes_as_b64():
    body = rest_body_rows({"text": ["A gorgeous film.", "crème 🎬"]})
    assert body == {"instances": [{"text": "A gorgeous film."}, {"text": "crème 🎬"}]}
    # The documented binary encoding: b"image bytes" -> {"b64": "aW1hZ2UgYnl0ZXM="}
    assert rest_body_rows({"image": [b"image bytes"], "caption": ["seaside"]}) == {
        "instances": [{"image": {"b64": "aW1hZ2UgYnl0ZXM="}, "caption": "seaside"}]
    }
    assert rest_body_columnar({"text": np.array([b"\xff\x00"], dtype=object)}) == {
        "inputs": {"text": [{"b64": "/wA="}]}
    }


def test_rest_bodies_reject_what_tf_serving_rejects():
    with pytest.raises(ValueError, match="one batch size"):
        rest_body_rows({"text": ["a", "b"], "text_pair": ["c"]})
    with pytest.raises(ValueError, match="at least one instance"):
        rest_body_rows({"text": []})
    with pytest.raises(ValueError, match="non-empty dict"):
        rest_body_columnar({})
    with pytest.raises(TypeError, match="cannot send"):
        rest_body_columnar({"text": [object()]})


def test_readme_curl_body_is_the_row_body():
    readme = (SERVING_DIR / "README.md").read_text()
    body = json.loads(re.search(r"curl -d '(\{\"instances\".*?)' http://localhost:8501", readme).group(1))
    assert body == rest_body_rows({"text": ["A gorgeous film."]})


# ---------------------------------------------------------------------------
# RestClient end to end
# ---------------------------------------------------------------------------


def test_rest_client_classifies_like_keras(keras_answers, rest_url):
    labels, probabilities = keras_answers
    client = RestClient(rest_url)
    for rows in (False, True):
        outputs = client.predict({"text": TEXTS}, rows=rows)
        assert sorted(outputs) == ["label", "probabilities", "score"]
        assert outputs["label"] == labels
        np.testing.assert_allclose(outputs["probabilities"], probabilities, atol=1e-5)
        np.testing.assert_allclose(outputs["score"], probabilities.max(-1), atol=1e-5)
    # The README's curl request, sent as is.
    raw = client.predict_raw({"instances": [{"text": "A gorgeous film."}]})
    assert set(raw["predictions"][0]) == {"label", "score", "probabilities"}
    assert client.status()["model_version_status"][0]["state"] == "AVAILABLE"


def test_rest_client_calls_other_signatures(exported, keras_answers, rest_url):
    model, _, version = exported
    client = RestClient(rest_url, signature_name="serve_tokens", version=version)
    outputs = client.predict(_token_inputs(model, TEXTS))
    np.testing.assert_allclose(outputs["probabilities"], keras_answers[1], atol=1e-5)


def test_rest_client_reads_unnamed_and_binary_outputs(rest_url):
    client = RestClient(rest_url, model_name="half")
    for rows in (False, True):  # one output: TF Serving leaves its name out, metadata gives it
        assert client.predict({"x": [1.0, 2.0, 5.0]}, rows=rows) == {"y": [2.5, 3.0, 4.5]}
        echoed = client.predict({"data": [b"\xff\x00", "naïve"]}, signature_name="echo", rows=rows)
        assert echoed == {"data_bytes": [b"\xff\x00", "naïve".encode()], "length": [2, 6]}


def test_rest_client_errors_name_model_and_signature(rest_url):
    not_found = r"'nope'.*'serving_default'.*\(404\).*Servable not found"
    with pytest.raises(ServingError, match=not_found) as caught:
        RestClient(rest_url, model_name="nope").predict({"text": ["a"]})
    assert caught.value.code == 404 and caught.value.model_name == "nope"
    with pytest.raises(ServingError, match=r"'tfptlm'.*'missing'.*\(400\).*not found"):
        RestClient(rest_url).predict({"text": ["a"]}, signature_name="missing")
    with pytest.raises(ServingError, match=r"\(400\).*Missing named input: text"):
        RestClient(rest_url).predict({"words": ["a"]})
    with pytest.raises(ServingError, match="no answer from the server") as caught:
        RestClient("http://127.0.0.1:9", timeout=2).predict({"text": ["a"]})
    assert caught.value.code is None


# ---------------------------------------------------------------------------
# GrpcClient end to end
# ---------------------------------------------------------------------------


@needs_grpc
def test_grpc_client_classifies_like_keras(exported, keras_answers, grpc_target):
    model, _, version = exported
    labels, probabilities = keras_answers
    with GrpcClient(grpc_target) as client:
        outputs = client.predict({"text": TEXTS})
        assert outputs["probabilities"].dtype == np.float32
        assert outputs["probabilities"].shape == (len(TEXTS), 2)
        np.testing.assert_allclose(outputs["probabilities"], probabilities, atol=1e-5)
        np.testing.assert_allclose(outputs["score"], probabilities.max(-1), atol=1e-5)
        assert decode_strings(outputs)["label"].tolist() == labels
        # a pinned version and an output filter
        pinned = GrpcClient(grpc_target, version=version, channel=client.channel)
        assert sorted(pinned.predict({"text": TEXTS[:1]}, output_filter=["label"])) == ["label"]
        # the token-level signature, fed int32 arrays
        by_tokens = client.predict(_token_inputs(model, TEXTS), signature_name="serve_tokens")
        np.testing.assert_allclose(by_tokens["probabilities"], probabilities, atol=1e-5)


@needs_grpc
def test_grpc_client_errors_name_model_and_signature(grpc_target):
    with GrpcClient(grpc_target, model_name="nope") as client:
        not_found = r"'nope'.*'serving_default'.*NOT_FOUND.*Servable not found"
        with pytest.raises(ServingError, match=not_found) as caught:
            client.predict({"text": ["a"]})
        assert caught.value.code == "NOT_FOUND"
    with GrpcClient(grpc_target) as client:
        with pytest.raises(ServingError, match=r"'tfptlm'.*'missing'.*INVALID_ARGUMENT") as caught:
            client.predict({"text": ["a"]}, signature_name="missing")
        assert caught.value.code == "INVALID_ARGUMENT"
        with pytest.raises(ServingError, match="INVALID_ARGUMENT.*do not match"):
            client.predict({"words": ["a"]})
        with pytest.raises(ServingError, match="INVALID_ARGUMENT.*int32 but int64"):
            int64_tokens = {name: np.zeros([1, 4], np.int64) for name in TOKEN_INPUTS}
            client.predict(int64_tokens, signature_name="serve_tokens")
    with GrpcClient("127.0.0.1:9") as client:
        with pytest.raises(ServingError, match="UNAVAILABLE"):
            client.predict({"text": ["a"]}, timeout=2)
