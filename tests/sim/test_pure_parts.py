"""The simulator's pure parts: Execute arguments, attributes, notify decisions, URIs, the runner."""

from __future__ import annotations

import pytest

from lwm2m_server.model import Path
from lwm2m_server.sim.errors import ModelError, RequestError, TransferError
from lwm2m_server.sim.objects import parse_execute_args
from lwm2m_server.sim.observe import Attributes, parse_attributes, qualifies
from lwm2m_server.sim.runtime import IDLE_INSTANCES, ModelRunner, check_model
from lwm2m_server.sim.transfer import check_uri
from tests.support.wasm import wat_to_wasm

P = Path.parse("/3/0/9")


def test_execute_arguments_follow_the_spec_grammar():
    assert parse_execute_args("") == {}
    assert parse_execute_args("0='1,2,3',1,2='x'") == {0: "1,2,3", 1: None, 2: "x"}
    for bad in ("0=1", "0='open", "12", "0,", "0,0", "a"):
        with pytest.raises(RequestError) as e:
            parse_execute_args(bad)
        assert e.value.code == (4, 0)


def test_attributes_parse_merge_and_refuse_bad_values():
    a = parse_attributes(["pmin=5", "gt=20.5"], P, Attributes(), numeric=True)
    assert a == Attributes(pmin=5, gt=20.5)
    assert parse_attributes(["gt"], P, a, numeric=True) == Attributes(pmin=5)
    assert Attributes(pmin=1, pmax=9).merged(Attributes(pmax=3)) == Attributes(pmin=1, pmax=3)
    for q, numeric in ((["pmin=-1"], True), (["pmin=1.5"], True), (["lt=5", "gt=4"], True),
                       (["st=1"], False), (["lt=1", "gt=5", "st=2"], True), (["x=1"], True)):
        with pytest.raises(RequestError):
            parse_attributes(q, P, Attributes(), numeric=numeric)


def test_notify_decision_for_gt_lt_st_and_plain_changes():
    v = lambda x: {P: x}  # noqa: E731
    assert not qualifies(Attributes(), v(1), v(1))
    assert qualifies(Attributes(), v(1), v(2))
    assert qualifies(Attributes(gt=10), v(9), v(11)) and not qualifies(Attributes(gt=10), v(11), v(12))
    assert qualifies(Attributes(lt=5), v(6), v(4)) and not qualifies(Attributes(lt=5), v(4), v(3))
    assert qualifies(Attributes(st=2), v(1), v(3)) and not qualifies(Attributes(st=2), v(1), v(2))
    assert qualifies(Attributes(st=2), {P: "a"}, {P: "b"})  # not numeric: any change


@pytest.mark.parametrize("uri,kind", [("", "uri"), ("coap://", "uri"), ("coap://h:99999/x", "uri"),
                                      ("coaps+tcp://h/x", "protocol"), ("mqtt://h/x", "protocol")])
def test_package_uri_checks(uri, kind):
    with pytest.raises(TransferError) as e:
        check_uri(uri)
    assert e.value.kind == kind


def test_runner_runs_the_example_model_and_refuses_broken_ones(example_model_wasm, tmp_path):
    r = ModelRunner(example_model_wasm)
    res = r.infer([1.0, 0.5, 0.2, 0.1])
    assert res.output == 1 and res.score is not None and res.latency_us >= 0
    with pytest.raises(ModelError, match="not a valid Wasm module"):
        check_model(b"\0asm garbage")
    importing = wat_to_wasm('(module (import "env" "f" (func)) (memory (export "memory") 1))',
                            tmp_path, "imp")
    with pytest.raises(ModelError, match="imports env.f"):
        check_model(importing)
    looping = wat_to_wasm("""(module (memory (export "memory") 1)
      (func (export "input_buffer") (result i32) i32.const 0)
      (func (export "input_size") (result i32) i32.const 4)
      (func (export "infer") (result i32) (loop (br 0)) i32.const 0))""", tmp_path, "loop")
    with pytest.raises(ModelError, match="inference failed"):
        ModelRunner(looping).infer([1, 2, 3, 4])


def test_runners_of_the_same_bytes_share_one_compiled_module_and_its_instances(example_model_wasm):
    runners = [ModelRunner(example_model_wasm) for _ in range(50)]
    shared = runners[0].shared
    assert all(r.shared is shared for r in runners)  # compiled once per SHA-256
    before = shared.instantiations
    outputs = {r.infer([1.0, 0.5, 0.2, 0.1]).output for r in runners}
    assert outputs == {1}
    # Fifty devices running one after the other use at most one new instance, not fifty.
    assert shared.instantiations - before <= 1
    assert 1 <= shared.idle <= IDLE_INSTANCES


def test_an_instance_that_trapped_is_not_handed_to_the_next_run(tmp_path):
    # infer traps (unreachable) when the first input is negative; otherwise answers 7.
    wasm = wat_to_wasm("""(module (memory (export "memory") 1)
      (func (export "input_buffer") (result i32) i32.const 0)
      (func (export "input_size") (result i32) i32.const 1)
      (func (export "infer") (result i32)
        (if (f32.lt (f32.load (i32.const 0)) (f32.const 0)) (then unreachable))
        i32.const 7))""", tmp_path, "trap")
    r = ModelRunner(wasm)
    assert r.infer([1.0]).output == 7
    idle = r.shared.idle
    with pytest.raises(ModelError, match="inference failed"):
        r.infer([-1.0])
    assert r.shared.idle == idle - 1  # the trapped instance was dropped
    made = r.shared.instantiations
    assert ModelRunner(wasm).infer([2.0]).output == 7
    assert r.shared.instantiations == made + (idle == 1)
