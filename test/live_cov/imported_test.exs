defmodule LiveCov.ImportedTest do
  use ExUnit.Case, async: false

  alias LiveCov.{Imported, Instrumented, Snapshot}
  alias LiveCov.Test.FixtureBuild

  import LiveCov.Test.FixtureBuild, only: [snapshot_fixtures: 1]

  @fx "test/fixtures/snapshot/snap_fx.erl"

  setup_all :snapshot_fixtures

  setup do
    LiveCov.stop()
    Imported.clear()
    on_exit(fn -> FixtureBuild.erlang(@fx) end)
    :ok
  end

  defp calls(m), do: LiveCov.Cover.analyse(m, :calls, :module)

  # A snapshot of the -DVARIANT build of snap_fx (another md5, other sites).
  defp variant_snapshot do
    FixtureBuild.erlang(@fx, compile: [:debug_info, {:d, :VARIANT}])
    {:ok, :snap_fx} = LiveCov.Cover.compile_beam(:snap_fx)
    apply(:snap_fx, :loop, [4])
    snap = LiveCov.snapshot(modules: [:snap_fx])
    LiveCov.stop()
    snap
  end

  test "without imports nothing is added" do
    assert Imported.counts([]) == %{}
    {:ok, :snap_fx} = LiveCov.Cover.compile_beam(:snap_fx)
    assert Imported.counts([Instrumented.lookup(:snap_fx)]) == %{}
    assert Imported.builds() == %{}
    assert Imported.imported() == [] and Imported.imported_modules() == []
  end

  test "data of another build is kept apart, listed, and used once that build is loaded" do
    variant = variant_snapshot()
    FixtureBuild.erlang(@fx)
    {:ok, :snap_fx} = LiveCov.Cover.compile_beam(:snap_fx)
    apply(:snap_fx, :loop, [2])
    assert {:ok, {:snap_fx, 3}} = calls(:snap_fx)

    assert {:ok, summary} = Imported.import_snapshot(variant)
    assert summary.other_build == [:snap_fx]
    assert summary.matched == [] and summary.not_loaded == []
    # Not added: it describes other code.
    assert {:ok, {:snap_fx, 3}} = calls(:snap_fx)
    assert Imported.counts([Instrumented.lookup(:snap_fx)]) == %{}
    total = variant |> Snapshot.counts(:snap_fx) |> Enum.sum()

    assert %{snap_fx: [%{loaded: false, kind: :snapshot, calls: ^total, md5: md5}]} =
             Imported.builds()

    refute md5 == Instrumented.lookup(:snap_fx).md5

    # A report against the imported build: loop(4) is 5 calls of loop/1 and 4 of add/2.
    assert {:ok, {:snap_fx, 9}} =
             LiveCov.SnapshotReport.analyse(Imported.snapshot(), :snap_fx, :calls, :module)

    # Load the variant build: its imported counts now add.
    LiveCov.stop()
    FixtureBuild.erlang(@fx, compile: [:debug_info, {:d, :VARIANT}])
    {:ok, :snap_fx} = LiveCov.Cover.compile_beam(:snap_fx)
    assert {:ok, {:snap_fx, 9}} = calls(:snap_fx)
    assert %{snap_fx: [%{loaded: true}]} = Imported.builds()
  end

  test "data of a module not instrumented yet waits for it" do
    {:ok, :snap_fx2} = LiveCov.Cover.compile_beam(:snap_fx2)
    apply(:snap_fx2, :hello, [~c"a"])
    snap = LiveCov.snapshot()
    LiveCov.stop()

    assert {:ok, %{not_loaded: [:snap_fx2], kind: :snapshot, path: nil}} =
             Imported.import_snapshot(snap)

    assert Imported.imported_modules() == [:snap_fx2]
    {:ok, :snap_fx2} = LiveCov.Cover.compile_beam(:snap_fx2)
    assert {:ok, {:snap_fx2, 1}} = calls(:snap_fx2)
  end

  test "imports of several snapshots of the same build sum; the same one twice is refused" do
    {:ok, :snap_fx2} = LiveCov.Cover.compile_beam(:snap_fx2)
    apply(:snap_fx2, :hello, [~c"a"])
    a = LiveCov.dump_and_reset(labels: [part: 1])
    apply(:snap_fx2, :hello, [~c"b"])
    apply(:snap_fx2, :hello, [~c"c"])
    b = LiveCov.dump_and_reset(labels: [part: 2])

    assert {:ok, _} = Imported.import_snapshot(a)
    assert {:ok, _} = Imported.import_snapshot(b)
    assert {:error, {:already_imported, msg}} = Imported.import_snapshot(b)
    assert msg =~ "twice"
    assert {:ok, {:snap_fx2, 3}} = calls(:snap_fx2)

    assert [
             %{provenance: [%{labels: %{"part" => "1"}}]},
             %{provenance: [%{labels: %{"part" => "2"}}]}
           ] = Imported.files()

    assert length(Imported.snapshot().provenance) == 2
    assert Imported.clear() == :ok
    assert Imported.files() == [] and Imported.builds() == %{}
    assert {:ok, {:snap_fx2, 0}} = calls(:snap_fx2)
  end
end
