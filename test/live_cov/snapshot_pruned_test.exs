defmodule LiveCov.SnapshotPrunedTest do
  # Snapshots of adaptive coverage (mode: :coverage): the pruned sites travel with the counts.
  use ExUnit.Case, async: false

  # Fixtures compiled while the tests run.
  @compile {:no_warn_undefined, [:prune_loop]}

  alias LiveCov.{Imported, Instrumented, Prune, Snapshot}
  alias LiveCov.Test.FixtureBuild

  import LiveCov.Test.FixtureBuild, only: [prune_fixtures: 1]

  # `sample_file()` of native/live_cov_core/src/snapshot.rs as written by the format version 1
  # encoder (modules m1 and m2, counts [1, 0, 300] and [2^64 - 1, 5]).
  @v1_file Base.decode16!(
             "894c697665436f760100000000000000ea0000000000000024900bbb9e90018a" <>
               "50524f56260000000000000001066140686f73740434323432fd00d0ca9f1703" <>
               "0000020372756e02313703676974036162634d4554416e000000000000000202" <>
               "6d3107070707070707070707070707070707010a2f7372632f6d2e65726c0201" <>
               "66010167000300010a01010b00010c0200010101010200026d32070707070707" <>
               "07070707070707070707010a2f7372632f6d2e65726c020166010167000200010a" <>
               "01010b0200010101010100434e545232000000000000000287acd99ef606a68c" <>
               "3b524caa163dd93b030100fb2c01c63542928ca1297299fd19f0dbd89ddb02fd" <>
               "ffffffffffffffff05",
             case: :lower
           )

  setup_all :prune_fixtures

  setup do
    LiveCov.stop()
    Imported.clear()
    FixtureBuild.manual_prune!()

    dir = FixtureBuild.tmp_dir("snap_pruned")
    # Imported data of the fixtures' build would add to their counts in other test files.
    on_exit(fn -> Imported.clear() end)

    {:ok, dir: dir}
  end

  @modules [:prune_full, :prune_loop]

  defp pl, do: :prune_loop

  # Only the fixtures: a module another test file failed to restore must not get in.
  defp snapshot, do: LiveCov.snapshot(modules: @modules)

  # Starts both fixtures in adaptive mode, runs one branch of prune_loop (`n`) and prunes.
  defp run_and_prune(fixtures, n) do
    assert %{instrumented: instrumented} = LiveCov.start(fixtures, mode: :coverage)
    assert :prune_loop in instrumented and :prune_full in instrumented
    unpruned = snapshot()
    pl().work(n)
    assert %{pruned: [%{module: :prune_loop}], failed: []} = LiveCov.prune()
    info = Instrumented.lookup(:prune_loop)
    assert MapSet.size(info.pruned) > 0
    {info, unpruned, snapshot()}
  end

  defp sorted(set), do: set |> Enum.to_list() |> Enum.sort()

  describe "building" do
    test "the snapshot's pruned set is the module's; the build hash does not change", %{
      fixtures: fixtures
    } do
      {info, unpruned, snap} = run_and_prune(fixtures, 3)
      hash = Snapshot.choose(snap)[:prune_loop]

      # Pruning is not a new build: same metadata, same hash, one build per module.
      assert Snapshot.choose(unpruned)[:prune_loop] == hash
      assert Snapshot.mixed_builds(Snapshot.merge(unpruned, snap)) == %{}
      assert unpruned.pruned == %{}

      # Only prune_loop had sites pruned (prune_full never ran).
      assert snap.pruned == %{hash => sorted(info.pruned)}
      assert Snapshot.pruned(snap, :prune_loop) == sorted(info.pruned)
      assert Snapshot.pruned(snap, hash) == sorted(info.pruned)
      assert Snapshot.pruned(snap, :prune_full) == []
      assert Snapshot.pruned(snap, :nope) == nil

      # Pruned sites ran: their (frozen) counts are at least 1.
      counts = Snapshot.counts(snap, :prune_loop)
      assert Enum.all?(info.pruned, &(Enum.at(counts, &1) >= 1))

      mi = Snapshot.module_info(snap, hash)
      assert mi.pruned == info.pruned and mi.mode == :coverage
      assert Snapshot.to_module_info(snap.metas[hash]).pruned == MapSet.new()

      # A dump (read and zero) records them too.
      assert LiveCov.dump_and_reset(modules: @modules).pruned == snap.pruned
    end
  end

  describe "file format" do
    test "pruned sets round-trip through encode/decode and export/import", %{
      fixtures: fixtures,
      dir: dir
    } do
      {info, _unpruned, snap} = run_and_prune(fixtures, 3)
      hash = Snapshot.choose(snap)[:prune_loop]

      assert {:ok, data} = Snapshot.encode(snap)
      assert <<0x89, "LiveCov", 2::little-32, _::binary>> = data
      assert {:ok, back} = Snapshot.decode(data)
      assert back.version == 2
      assert back.pruned == snap.pruned
      assert back.counts == snap.counts
      assert Map.keys(back.metas) == Map.keys(snap.metas)
      assert {:ok, ^data} = Snapshot.encode(back)

      path = Path.join(dir, "adaptive.lcsnap")
      assert {:ok, %{modules: @modules}} = LiveCov.export(path, modules: @modules)
      assert {:ok, read} = Snapshot.read(path)
      assert read.pruned == %{hash => sorted(info.pruned)}

      # Imported elsewhere (here, after stopping), the pruned set comes back with the data.
      LiveCov.stop()
      assert {:ok, %{modules: @modules}} = LiveCov.import(path)
      imported = Imported.snapshot()
      assert imported.pruned == read.pruned
      assert imported.counts == read.counts

      # Instrumented again (exact counts) with that data imported: the sums are not exact
      # for the module whose imported data had pruned sites.
      assert %{instrumented: _} = LiveCov.start(fixtures)
      data = Map.new(LiveCov.module_data(), &{&1.module, &1})
      assert data.prune_loop.exact == false
      assert data.prune_full.exact == true
    end

    test "a version 1 file still decodes, with no pruned site" do
      assert {:ok, snap} = Snapshot.decode(@v1_file)
      assert snap.version == 1
      assert snap.pruned == %{}
      assert Snapshot.modules(snap) == [:m1, :m2]
      assert Snapshot.counts(snap, :m1) == [1, 0, 300]
      assert Snapshot.counts(snap, :m2) == [0xFFFF_FFFF_FFFF_FFFF, 5]

      assert [%{exact: true}, %{exact: true}] =
               LiveCov.SnapshotReport.module_data(snap, loaded: MapSet.new())

      # Written again it is a version 2 file with the same data.
      assert {:ok, v2} = Snapshot.encode(snap)
      assert <<0x89, "LiveCov", 2::little-32, _::binary>> = v2
      assert {:ok, again} = Snapshot.decode(v2)
      assert again.counts == snap.counts and again.metas |> Map.keys() == Map.keys(snap.metas)

      # Newer than version 2 is refused as before.
      <<head::binary-size(8), _::little-32, rest::binary>> = v2

      assert {:error, {:unsupported_version, msg}} =
               Snapshot.decode(head <> <<3::little-32>> <> rest)

      assert msg =~ "version 3" and msg =~ "upgrade"
    end

    test "pruned indices out of range are refused; pruned sets without counts are kept", %{
      fixtures: fixtures
    } do
      {info, _unpruned, snap} = run_and_prune(fixtures, 3)
      hash = Snapshot.choose(snap)[:prune_loop]
      n = LiveCov.ModuleInfo.size(info)

      assert {:error, {:bad_input, msg}} = Snapshot.encode(%{snap | pruned: %{hash => [0, n]}})

      assert msg =~ "pruned site index #{n}" and msg =~ "out of range"

      assert {:error, {:bad_input, _}} = Snapshot.encode(%{snap | pruned: %{hash => [-1]}})

      # Unsorted input with duplicates is written sorted.
      {:ok, data} = Snapshot.encode(%{snap | pruned: %{hash => [2, 0, 2]}})
      assert {:ok, %{pruned: %{^hash => [0, 2]}}} = Snapshot.decode(data)

      # A build with pruned sites but no counts: written with zero counts.
      {:ok, data} = Snapshot.encode(%{snap | counts: Map.delete(snap.counts, hash)})
      assert {:ok, back} = Snapshot.decode(data)
      assert back.pruned == snap.pruned
      assert Snapshot.counts(back, hash) |> Enum.sum() == 0

      # Pruned sets of builds left out of the snapshot (no metadata, no counts) are dropped.
      only_full = %{
        snap
        | metas: Map.delete(snap.metas, hash),
          counts: Map.delete(snap.counts, hash)
      }

      assert {:ok, data} = Snapshot.encode(only_full)
      assert {:ok, %{pruned: pruned}} = Snapshot.decode(data)
      assert pruned == %{}
    end
  end

  describe "merge, delta, reports" do
    test "merging snapshots unites the pruned sets of a build", %{fixtures: fixtures} do
      {_, _, a} = run_and_prune(fixtures, 3)
      LiveCov.stop()
      {_, _, b} = run_and_prune(fixtures, 5)
      hash = Snapshot.choose(a)[:prune_loop]
      assert Snapshot.choose(b)[:prune_loop] == hash

      pa = Snapshot.pruned(a, hash)
      pb = Snapshot.pruned(b, hash)
      assert pa != [] and pb != [] and MapSet.disjoint?(MapSet.new(pa), MapSet.new(pb))

      union = Enum.sort(pa ++ pb)
      merged = Snapshot.merge(a, b)
      assert merged.pruned == %{hash => union}
      assert Snapshot.merge(b, a).pruned == merged.pruned
      assert Snapshot.merge([a, b, a]).pruned == merged.pruned
      assert Snapshot.mixed_builds(merged) == %{}

      assert Snapshot.counts(merged, :prune_loop) ==
               :lists.zipwith(&+/2, Snapshot.counts(a, hash), Snapshot.counts(b, hash))

      # With unpruned data of the same build: one build, the set kept.
      plain = %{a | pruned: %{}}
      assert Snapshot.merge(plain, b).pruned == b.pruned

      # Merging encoded files in the NIF does the same.
      {:ok, ea} = Snapshot.encode(a)
      {:ok, eb} = Snapshot.encode(b)
      {:ok, ep} = Snapshot.encode(plain)
      assert {:ok, file, []} = Snapshot.merge_encoded([ea, eb, ep])
      assert {:ok, decoded} = Snapshot.decode(file)
      assert decoded.pruned == %{hash => union}
      assert decoded.counts == Snapshot.merge([a, b, plain]).counts
      assert {:ok, file2, []} = Snapshot.merge_encoded([ep, @v1_file])
      assert {:ok, %{pruned: pruned2}} = Snapshot.decode(file2)
      assert pruned2 == %{}
    end

    test "delta keeps the later snapshot's pruned set", %{fixtures: fixtures} do
      {_info, unpruned, snap} = run_and_prune(fixtures, 3)
      assert Snapshot.delta(unpruned, snap).pruned == snap.pruned
      assert Snapshot.delta(snap, unpruned).pruned == %{}
    end

    test "a report of a decoded snapshot with pruned sites is not exact", %{fixtures: fixtures} do
      {info, unpruned, snap} = run_and_prune(fixtures, 3)
      {:ok, data} = Snapshot.encode(snap)
      {:ok, back} = Snapshot.decode(data)

      by_module = Map.new(LiveCov.SnapshotReport.module_data(back), &{&1.module, &1})
      assert by_module.prune_loop.exact == false
      assert by_module.prune_full.exact == true
      assert by_module.prune_full.pruned_lines == []
      assert by_module.prune_loop.pruned_lines == Prune.pruned_lines(info)
      assert by_module.prune_loop.pruned_lines != []
      assert Enum.all?(by_module.prune_loop.pruned_lines, &(by_module.prune_loop.lines[&1] > 0))

      assert %LiveCov.Stats{exact: false} = LiveCov.SnapshotReport.report(back, root: File.cwd!())

      assert %LiveCov.Stats{exact: true} =
               LiveCov.SnapshotReport.report(back, root: File.cwd!(), modules: [:prune_full])

      # Before pruning the same build reports exact counts.
      {:ok, plain} = unpruned |> Snapshot.encode() |> elem(1) |> Snapshot.decode()
      assert %LiveCov.Stats{exact: true} = LiveCov.SnapshotReport.report(plain, root: File.cwd!())
    end
  end
end
