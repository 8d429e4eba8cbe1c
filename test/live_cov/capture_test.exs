defmodule LiveCov.CaptureTest do
  use ExUnit.Case, async: false

  alias LiveCov.{Capture, Instrumented, Snapshot}
  alias LiveCov.Test.FixtureBuild

  import LiveCov.Test.FixtureBuild, only: [snapshot_fixtures: 1]

  setup_all :snapshot_fixtures

  setup do
    FixtureBuild.snapshot_instrumented!()
  end

  test "build: this node's modules and counts, with provenance" do
    snap = Capture.build(labels: [run: 7], modules: [:snap_fx2])
    assert Snapshot.modules(snap) == [:snap_fx2]
    assert [%{node: node, labels: %{"run" => "7", "live_cov_boot" => boot}}] = snap.provenance
    assert node == Atom.to_string(node())
    assert boot == Capture.boot_id() and boot == Capture.boot_id()
    assert Snapshot.counts(snap, :snap_fx2) == [1, 1]
  end

  test "loaded_hashes are the builds instrumented here" do
    {metas, []} = Snapshot.metas_of(Instrumented.modules())
    assert Capture.loaded_hashes() == MapSet.new(metas, & &1.hash)
  end

  test "take, then give back: nothing is lost" do
    dump = Capture.build(take: true)
    assert Snapshot.counts(dump, :snap_fx2) == [1, 1]
    assert Snapshot.counts(Capture.build(), :snap_fx2) == [0, 0]
    assert Capture.give_back(dump) == :ok
    assert Snapshot.counts(Capture.build(), :snap_fx2) == [1, 1]
  end
end
