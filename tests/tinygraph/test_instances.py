"""Every call of a template is its own instance (identity), yet reads as ``(template_name, t)``."""
import pickle

import numpy as np

import tinygraph as tg
from tinygraph.instance import Instance
from tinygraph.nn import Parameter

B, D, H = 2, 3, 4


class Leaky(tg.Template):
    """h_t = tanh(x_t @ W + 0.5 * h_{t-1})."""

    def __init__(self, name=None, seed=0):
        super().__init__(name=name)
        self.W = Parameter(np.random.default_rng(seed).normal(size=(D, H)))

    def initial_state(self, batch, dtype):
        return tg.tensor(np.zeros((batch, H), dtype=dtype), name="h0")

    def forward(self, x, h):
        h = (x @ self.W + 0.5 * h).tanh()
        return h, h


class Outer(tg.Template):
    """A template whose step calls another template (an inner cell) and adds a skip connection."""

    def __init__(self, name=None):
        super().__init__(name=name)
        self.inner = Leaky(name="Inner")

    def initial_state(self, batch, dtype):
        return self.inner.initial_state(batch, dtype)

    def forward(self, x, h):
        y, h_inner = self.inner(x, h)
        out = y + 1.0 * h
        return out, out


def seq(T, seed=0):
    return np.random.default_rng(seed).normal(size=(T, B, D))


def test_siamese_unrolls_of_one_model_count_separately():
    from tinygraph import models

    rnn = models.RNN(D, H, rng=0)
    out1, _ = rnn(seq(7))
    out2, _ = rnn(seq(3, seed=1))
    graph = tg.Graph(out1, out2)
    assert graph.instances() == {"RNNCell": 10}
    assert len(graph.by_instance()) == 10 + 1  # ten steps and the nodes outside them (key None)
    # the structure of one step is the same as with one unroll in the graph
    alone = rnn.cell.structure(rnn(seq(7))[0])
    both = rnn.cell.structure(out1, out2)
    assert len(both.nodes) == len(alone.nodes) and len(both.recurrent_edges) == len(alone.recurrent_edges)


def test_instances_still_read_as_name_and_step():
    cell = Leaky()
    ys, _ = tg.unroll(cell, seq(3))
    step = ys.parents[0].instance
    assert isinstance(step, Instance)
    assert step == ("Leaky", 0) and ("Leaky", 0) == step and step != ("Leaky", 1)
    name, t = step
    assert (name, t) == ("Leaky", 0) and step[0] == "Leaky" and step[1] == 0 and len(step) == 2
    assert hash(step) == hash(("Leaky", 0))
    assert tg.Graph(ys).by_instance()[("Leaky", 2)][0].instance == ("Leaky", 2)  # lookup by the pair works


def test_two_unrolls_are_different_instances_with_equal_names():
    cell = Leaky()
    a, _ = tg.unroll(cell, seq(2))
    b, _ = tg.unroll(cell, seq(2))
    ia, ib = a.parents[0].instance, b.parents[0].instance
    assert ia == ("Leaky", 0) and ib == ("Leaky", 0)
    assert ia != ib and ia.run is not ib.run
    groups = tg.Graph(a, b).by_instance()
    assert groups[ia] != groups[ib] and not set(map(id, groups[ia])) & set(map(id, groups[ib]))


def test_a_direct_call_after_an_unroll_never_collides_with_a_step():
    cell = Leaky()
    ys, h = tg.unroll(cell, seq(4))
    fresh, _ = cell(tg.tensor(seq(1)[0]), cell.initial_state(B, np.float64))
    assert fresh.instance == ("Leaky", 0) and fresh.instance is not ys.parents[0].instance
    assert tg.Graph(ys, fresh).instances() == {"Leaky": 5}
    # a direct call that continues the unroll's state is its next step, in the same run
    on, _ = cell(tg.tensor(seq(1)[0]), h)
    assert on.instance == ("Leaky", 4) and on.instance.run is ys.parents[0].instance.run
    assert tg.Graph(ys, fresh, on).instances() == {"Leaky": 6}


def test_two_templates_with_the_same_default_name_count_separately():
    a, b = Leaky(seed=0), Leaky(seed=1)
    ya, _ = tg.unroll(a, seq(3))
    yb, _ = tg.unroll(b, seq(3))
    graph = tg.Graph(ya, yb)
    assert graph.instances() == {"Leaky": 6}
    assert len(a.structure(ya, yb).nodes) == len(a.structure(ya).nodes)
    assert all(n.instance.template is a for n in a.structure(ya, yb).nodes)
    assert all(n.instance.template is b for n in b.structure(ya, yb).nodes)


def test_direct_call_index_does_not_grow_over_training_iterations():
    cell = Leaky()
    opt = tg.optim.SGD(cell.parameters(), lr=0.01)
    x = tg.tensor(seq(1)[0])
    indices = []
    for _ in range(50):
        h = cell.initial_state(B, np.float64)
        y0, h = cell(x, h)
        y1, h = cell(x, h)
        loss = (y1 ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        indices.append((y0.instance[1], y1.instance[1]))
        assert tg.Graph(loss).instances() == {"Leaky": 2}
    assert set(indices) == {(0, 1)}


def test_a_template_called_inside_another_keeps_the_nesting():
    T = 4
    outer = Outer()
    ys, _ = tg.unroll(outer, seq(T))
    graph = tg.Graph(ys)
    assert graph.instances() == {"Outer": T, "Inner": T}
    inner_nodes = [n for n in graph.nodes if n.instance is not None and n.instance.template is outer.inner]
    assert inner_nodes
    for n in inner_nodes:
        assert n.instance.parent is not None and n.instance.parent.template is outer
        # the state the inner cell receives was computed (one op) from its previous output,
        # so its calls count on with the enclosing steps
        assert n.instance.index == n.instance.parent.index
    # the outer template's structure holds the inner call's nodes
    s = outer.structure(ys)
    assert {n.op for n in s.nodes} >= {"matmul", "tanh", "add"}
    assert any(n.instance.template is outer.inner for n in s.nodes)


def test_continued_state_counts_on_in_the_same_run():
    cell = Leaky()
    first, h = tg.unroll(cell, seq(3))
    second, _ = tg.unroll(cell, seq(2), h)
    steps = [n.instance for n in tg.Graph(second).nodes if n.instance is not None]
    assert sorted({i.index for i in steps}) == [0, 1, 2, 3, 4]
    assert len({id(i.run) for i in steps}) == 1
    assert tg.Graph(second).instances() == {"Leaky": 5}


def test_instance_scope_makes_a_new_instance_each_time():
    with tg.config.instance_scope("Block", 0) as a:
        x = tg.tensor(1.0)
    with tg.config.instance_scope("Block", 0) as b:
        y = tg.tensor(2.0)
    assert x.instance is a and y.instance is b and a != b and a == ("Block", 0)


def test_pickled_tensors_keep_shared_instances_without_the_template():
    cell = Leaky()
    ys, h = tg.unroll(cell, seq(2))
    back_ys, back_h = pickle.loads(pickle.dumps((ys, h)))
    assert back_h.instance == ("Leaky", 1) and back_h.instance.template is None
    assert tg.Graph(back_ys).instances() == {"Leaky": 2}


def test_unrolled_drawing_separates_two_runs_and_labels_them():
    cell = Leaky()
    a, _ = tg.unroll(cell, seq(3))
    b, _ = tg.unroll(cell, seq(2, seed=1))
    source = tg.draw(a, b).source
    clusters = [line.split()[1] for line in source.splitlines() if line.strip().startswith("subgraph cluster_Leaky")]
    assert len(clusters) == 5 and len(set(clusters)) == 5
    assert "Leaky t=0" in source and "Leaky #2 t=0" in source and "Leaky #2 t=1" in source
    folded = tg.draw(a, b, folded=True).source
    assert "5 instances in 2 calls" in folded


def test_folded_drawing_keeps_two_same_named_templates_apart():
    a, b = Leaky(seed=0), Leaky(seed=1)
    ya, _ = tg.unroll(a, seq(3))
    yb, _ = tg.unroll(b, seq(3))
    source = tg.draw(ya + yb, folded=True).source
    clusters = [line.split()[1] for line in source.splitlines() if line.strip().startswith("subgraph cluster_")]
    assert sorted(clusters) == ["cluster_Leaky", "cluster_Leaky_r2", "cluster_parameters"]


def test_nested_template_is_a_cluster_inside_its_enclosing_cluster():
    outer = Outer()
    ys, _ = tg.unroll(outer, seq(2))
    lines = tg.draw(ys).source.splitlines()
    depth, seen = 0, []
    for line in lines:
        if line.strip().startswith("subgraph cluster_"):
            depth += 1
            seen.append((line.split()[1], depth))
        elif line.strip() == "}":
            depth -= 1
    assert [name for name, _ in seen] == ["cluster_parameters", "cluster_Outer_0", "cluster_Inner_0",
                                          "cluster_Outer_1", "cluster_Inner_1"]
    assert [d for _, d in seen] == [1, 1, 2, 1, 2]
    assert 'label="Inner t=1"' in "\n".join(lines) and "#2" not in "\n".join(lines)


def test_a_nested_template_called_afresh_in_each_step_is_numbered_within_the_step():
    class Fresh(Outer):
        def forward(self, x, h):
            y, _ = self.inner(x, self.inner.initial_state(x.shape[0], np.float64))
            out = y + 1.0 * h
            return out, out

    outer = Fresh(name="Outer")
    ys, _ = tg.unroll(outer, seq(2))
    assert tg.Graph(ys).instances() == {"Outer": 2, "Inner": 2}
    source = tg.draw(ys).source
    clusters = [line.split()[1] for line in source.splitlines() if line.strip().startswith("subgraph cluster_")]
    assert clusters == ["cluster_parameters", "cluster_Outer_0", "cluster_Inner_0", "cluster_Outer_1",
                        "cluster_Inner_0__2"]
    assert "#2" not in source  # each step's cluster holds one call of the inner cell, "Inner t=0"


def test_folded_user_template_folds_with_small_random_inputs():
    """x_t = per_step[t] of an input that needs no gradient is a leaf made inside the step;
    with random values (np.ones hid this) small leaves were matched by value and never folded."""
    from tinygraph.drawing.folded import folded

    def size(T, batch):
        ys, _ = tg.unroll(Leaky(), np.random.default_rng(T).normal(size=(T, batch, D)))
        return len(folded(tg.Graph(ys.sum())))

    # 3 elements per step (matched by value before) against 24 (matched by shape); and the
    # folded drawing does not grow with the number of steps
    assert size(5, 1) == size(5, 8) == size(2, 1) == size(12, 1)


def test_two_unrolls_of_different_lengths_fold_into_one_copy():
    from tinygraph.drawing.folded import folded

    cell = Leaky()
    a, _ = tg.unroll(cell, seq(7))
    b, _ = tg.unroll(cell, seq(3, seed=1))
    both = folded(tg.Graph(a, b))
    alone = folded(tg.Graph(a))
    inside = [n for n in both.nodes.values() if n.group is not None]
    assert len(inside) == len([n for n in alone.nodes.values() if n.group is not None])
    assert sum(n.count for n in inside if n.tensor.op == "tanh") == 10


def test_structure_prefers_a_run_with_a_recurrent_step():
    cell = Leaky()
    single, h = cell(tg.tensor(seq(1)[0]), cell.initial_state(B, np.float64))  # a run of one step
    ys, _ = tg.unroll(cell, seq(3))
    s = cell.structure(single, ys)
    assert s.index == 1 and len(s.recurrent_edges) == 1
    assert all(n.instance.run is ys.parents[0].instance.run for n in s.nodes)


def test_a_loop_of_direct_calls_with_ops_between_the_steps_counts_on():
    cell = Leaky()
    mask = tg.tensor(np.array([[1.0], [0.0]]))
    h = cell.initial_state(B, np.float64)
    seen = []
    for x in seq(4):
        y, h_new = cell(tg.tensor(x), h)
        h = h_new * mask + h * (1 - mask)  # a padded sequence keeps its state
        seen.append(y.instance)
    assert seen == [("Leaky", t) for t in range(4)] and len({id(i.run) for i in seen}) == 1
    assert tg.Graph(h).instances() == {"Leaky": 4}
    # a detached state starts afresh
    y, _ = cell(tg.tensor(seq(1)[0]), h.detach())
    assert y.instance == ("Leaky", 0) and y.instance.run is not seen[0].run


def test_direct_calls_over_another_runs_outputs_start_their_own_run():
    """Weight-tied layers: the same cell called over the outputs of its own unroll."""
    cell = Leaky()
    first, _ = tg.unroll(cell, seq(3))
    h = cell.initial_state(B, np.float64)
    for t in range(3):
        y, h = cell(first[t] @ tg.tensor(np.ones((H, D))), h)
        assert y.instance == ("Leaky", t) and y.instance.run is not first.parents[0].instance.run
    assert tg.Graph(h).instances() == {"Leaky": 6}


def test_folded_nested_template_is_a_cluster_inside_the_folded_copy():
    outer = Outer()
    ys, _ = tg.unroll(outer, seq(4))
    depth, seen = 0, []
    for line in tg.draw(ys, folded=True).source.splitlines():
        if line.strip().startswith("subgraph cluster_"):
            depth += 1
            seen.append((line.split()[1], depth))
        elif line.strip() == "}":
            depth -= 1
    assert seen == [("cluster_parameters", 1), ("cluster_Outer", 1), ("cluster_Inner", 2)]


def test_an_instance_unpickled_in_another_process_still_equals_its_pair(tmp_path):
    """String hashes differ between processes; the instance's hash must follow the new process's."""
    import subprocess
    import sys

    cell = Leaky()
    ys, h = tg.unroll(cell, seq(2))
    (tmp_path / "h.pkl").write_bytes(pickle.dumps(h))
    code = ("import pickle, sys; h = pickle.load(open(sys.argv[1], 'rb')); "
            "assert {h.instance: 1}.get(('Leaky', 1)) == 1 and hash(h.instance) == hash(('Leaky', 1)); print('ok')")
    env = {**__import__("os").environ, "PYTHONHASHSEED": "12345"}
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path / "h.pkl")], capture_output=True, text=True,
                         env=env, timeout=120)
    assert run.stdout.strip() == "ok", run.stderr
