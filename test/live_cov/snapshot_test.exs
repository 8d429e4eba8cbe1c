defmodule LiveCov.SnapshotTest do
  use ExUnit.Case, async: false

  alias LiveCov.{Counter, Imported, Snapshot}
  alias LiveCov.Test.FixtureBuild

  import LiveCov.Test.FixtureBuild, only: [snapshot_fixtures: 1]

  @fx "test/fixtures/snapshot/snap_fx.erl"

  setup_all :snapshot_fixtures

  setup do
    LiveCov.stop()
    Imported.clear()
    {:ok, dir: FixtureBuild.tmp_dir("snap")}
  end

  defp instrument! do
    assert {:ok, :snap_fx} = LiveCov.Cover.compile_beam(:snap_fx)
    assert {:ok, :snap_fx2} = LiveCov.Cover.compile_beam(:snap_fx2)
  end

  defp work!, do: FixtureBuild.snapshot_work!()

  defp calls(module), do: LiveCov.Cover.analyse(module, :calls, :line)

  describe "build, encode, decode" do
    test "a snapshot of instrumented modules round-trips through the file format" do
      instrument!()
      work!()
      snap = LiveCov.snapshot(labels: [run: "17", service: :api])

      assert [%{node: node, os_pid: pid, time: time, labels: labels}] = snap.provenance
      assert node == Atom.to_string(node())
      assert pid == System.pid()
      assert abs(time - System.os_time(:millisecond)) < 60_000

      assert labels == %{
               "run" => "17",
               "service" => "api",
               "live_cov_boot" => LiveCov.Capture.boot_id(),
               "backend" => Atom.to_string(elem(LiveCov.Counter.resolve(), 1))
             }

      assert Snapshot.modules(snap) == [:snap_fx, :snap_fx2]

      info = LiveCov.Instrumented.lookup(:snap_fx)
      assert Snapshot.counts(snap, :snap_fx) == Counter.read(info.slot) |> elem(1)
      [meta] = for {_, %{module: :snap_fx} = m} <- snap.metas, do: m
      assert meta.sites == LiveCov.ModuleInfo.sites(info)
      assert meta.md5 == info.md5
      assert meta.clauses == LiveCov.ModuleInfo.clauses(info)
      assert meta.source == to_string(info.source)

      assert {:ok, data} = Snapshot.encode(snap)
      assert <<0x89, "LiveCov", 2::little-32, _::binary>> = data
      assert {:ok, back} = Snapshot.decode(data)
      assert back.provenance == snap.provenance
      assert back.counts == snap.counts
      assert Map.keys(back.metas) == Map.keys(snap.metas)

      for {h, m} <- snap.metas do
        assert %{back.metas[h] | encoded: nil} == %{m | encoded: nil}
      end

      # Encoding the decoded snapshot gives the same bytes.
      assert {:ok, ^data} = Snapshot.encode(back)
      assert is_binary(back.content_hash) and byte_size(back.content_hash) == 16
    end

    test "metadata is encoded once per instrumentation and reused" do
      instrument!()
      info = LiveCov.Instrumented.lookup(:snap_fx)
      assert {:ok, m1} = Snapshot.meta_of(info)
      assert [{:snap_fx, _key, hash, encoded}] = :ets.lookup(:live_cov_meta_cache, :snap_fx)
      assert {:ok, m2} = Snapshot.meta_of(info)
      assert m1.hash == hash and m2.encoded == encoded
      # The same build instrumented again has the same metadata hash.
      instrument!()
      assert {:ok, m3} = Snapshot.meta_of(LiveCov.Instrumented.lookup(:snap_fx))
      assert m3.hash == m1.hash
    end

    test "an empty snapshot round-trips, and options select modules" do
      assert {:ok, data} = Snapshot.encode(%Snapshot{})
      assert {:ok, %Snapshot{metas: m, counts: c}} = Snapshot.decode(data)
      assert m == %{} and c == %{}

      instrument!()
      assert Snapshot.modules(LiveCov.snapshot(modules: [:snap_fx2])) == [:snap_fx2]
    end

    test "export writes the file atomically and reports what it wrote", %{dir: dir} do
      instrument!()
      work!()
      path = Path.join(dir, "sub/cov.lcsnap")
      assert {:ok, info} = LiveCov.export(path, labels: [git: "abc"])
      assert info.path == path
      assert info.bytes == File.stat!(path).size
      assert info.modules == [:snap_fx, :snap_fx2]
      assert {:ok, snap} = Snapshot.read(path)
      assert snap.content_hash == info.content_hash
      assert [%{labels: %{"git" => "abc"}}] = snap.provenance
      assert File.ls!(Path.dirname(path)) == ["cov.lcsnap"]

      assert {:error, {:cant_write, msg}} = LiveCov.export("/proc/live_cov/x.lcsnap")
      assert msg =~ "/proc/live_cov/x.lcsnap"
    end
  end

  describe "import" do
    test "imported counts add to what is there; the same data twice is refused", %{dir: dir} do
      instrument!()
      work!()
      before = calls(:snap_fx)
      path = Path.join(dir, "a.lcsnap")
      {:ok, _} = LiveCov.export(path)

      assert {:ok, summary} = LiveCov.import(path)
      assert summary.modules == [:snap_fx, :snap_fx2]
      assert summary.matched == [:snap_fx, :snap_fx2]
      assert summary.other_build == [] and summary.not_loaded == []

      {:ok, doubled} = calls(:snap_fx)
      {:ok, single} = before
      assert doubled == Enum.map(single, fn {k, n} -> {k, 2 * n} end)

      # Same content under another name: refused by content hash, nothing changes.
      copy = Path.join(dir, "copy.lcsnap")
      File.cp!(path, copy)
      assert {:error, {:already_imported, msg}} = LiveCov.import(copy)
      assert msg =~ "copy.lcsnap" and msg =~ "a.lcsnap" and msg =~ "twice"
      assert {:ok, ^doubled} = calls(:snap_fx)
      assert Imported.imported() == [Path.absname(path)]
    end
  end

  describe "bad files" do
    # A small valid snapshot and the offsets where its sections end.
    defp valid_file(dir) do
      instrument!()
      work!()
      path = Path.join(dir, "good.lcsnap")
      {:ok, _} = LiveCov.export(path)
      data = File.read!(path)
      <<_::binary-size(32), body::binary>> = data

      {ends, _} =
        Enum.map_reduce(1..3, 0, fn _, pos ->
          {_, <<_tag::binary-size(4), len::little-64, _::binary>>} =
            :erlang.split_binary(body, pos)

          stop = pos + 12 + len
          {32 + stop, stop}
        end)

      {data, ends}
    end

    defp assert_refused(dir, name, bytes, kind, text) do
      path = Path.join(dir, name)
      File.write!(path, bytes)
      state = {Imported.snapshot(), Imported.files(), calls(:snap_fx)}
      assert {:error, {^kind, msg}} = LiveCov.import(path), "#{name}: expected #{kind}"
      assert msg =~ path
      assert msg =~ text, "#{name}: #{msg}"
      assert {Imported.snapshot(), Imported.files(), calls(:snap_fx)} == state
      msg
    end

    test "each bad file gives its clear error and leaves memory untouched", %{dir: dir} do
      {data, [prov_end, meta_end, _cntr_end]} = valid_file(dir)
      # Something already imported, which must stay as it is.
      {:ok, _} = LiveCov.import(Path.join(dir, "good.lcsnap"))

      assert_refused(dir, "empty", "", :empty, "empty")

      assert_refused(
        dir,
        "magic",
        "PK\x03\x04 zip data" <> data,
        :not_a_snapshot,
        "LiveCov.export"
      )

      # Looks like a cover export (size byte, then an external term tag) but is not one.
      assert_refused(
        dir,
        "coverdata",
        <<20, 131, 104, 3, 100>> <> data,
        :bad_coverdata,
        "record 1"
      )

      assert_refused(dir, "gzip", :zlib.gzip(data), :not_a_snapshot, "gzip")

      # Truncated in every section.
      for {cut, section} <- [
            {5, "header"},
            {20, "header"},
            {40, "provenance"},
            {prov_end + 3, "metadata"},
            {meta_end - 1, "metadata"},
            {meta_end + 20, "counters"},
            {byte_size(data) - 1, "counters"}
          ] do
        assert_refused(dir, "cut#{cut}", binary_part(data, 0, cut), :truncated, section)
      end

      <<head::binary-size(8), _v::little-32, rest::binary>> = data

      msg =
        assert_refused(
          dir,
          "future",
          head <> <<3::little-32>> <> rest,
          :unsupported_version,
          "upgrade"
        )

      assert msg =~ "version 3"
      assert_refused(dir, "trailing", data <> "x", :trailing_data, "unexpected bytes")

      # A flipped byte in the body: the checksum catches it.
      flip = fn bin, i ->
        {a, <<b, c::binary>>} = :erlang.split_binary(bin, i)
        a <> <<Bitwise.bxor(b, 0x10)>> <> c
      end

      for i <- [40, prov_end + 10, meta_end + 10, byte_size(data) - 2] do
        assert_refused(dir, "flip#{i}", flip.(data, i), :checksum_mismatch, "corrupted")
      end

      # Every single-byte flip anywhere is an error (never a crash, never accepted).
      for i <- 0..(byte_size(data) - 1) do
        assert {:error, {kind, _}} = Snapshot.decode(flip.(data, i))

        assert kind in ([:not_a_snapshot, :unsupported_version, :malformed, :truncated] ++
                          [:trailing_data, :checksum_mismatch])
      end

      assert {:error, {:cant_read, msg}} = LiveCov.import(Path.join(dir, "missing"))
      assert msg =~ "missing"
      assert {:error, {:not_a_snapshot, _}} = Snapshot.decode(:nope)
    end
  end

  describe "merge" do
    test "same build sums, another build stays apart and is reported" do
      instrument!()
      work!()
      a = LiveCov.snapshot()
      apply(:snap_fx, :classify, [2])
      b = LiveCov.snapshot()

      merged = Snapshot.merge(a, b)
      fx_a = Snapshot.counts(a, :snap_fx)
      fx_b = Snapshot.counts(b, :snap_fx)
      assert Snapshot.counts(merged, :snap_fx) == :lists.zipwith(&+/2, fx_a, fx_b)
      assert merged.provenance == a.provenance ++ b.provenance
      assert Snapshot.mixed_builds(merged) == %{}
      # Pure: inputs are unchanged, and order does not matter for counts.
      assert Snapshot.counts(a, :snap_fx) == fx_a
      assert Snapshot.merge(b, a).counts == merged.counts
      assert Snapshot.merge([a, b, %Snapshot{}]).counts == merged.counts
      assert Snapshot.merge([]) == %Snapshot{}

      # Another build of snap_fx (compiled with -DVARIANT: other md5, other sites).
      other = other_build_snapshot()
      mixed = Snapshot.merge(merged, other)
      assert %{snap_fx: [_, _]} = Snapshot.mixed_builds(mixed)
      assert map_size(mixed.counts) == 3

      # The report uses one build at a time: the loaded one by default, or the chosen one.
      [variant] = for {h, %{module: :snap_fx}} <- other.metas, do: h
      loaded = Snapshot.choose(mixed)[:snap_fx]
      assert loaded != variant
      assert Snapshot.counts(mixed, :snap_fx) == Snapshot.counts(merged, :snap_fx)

      assert Snapshot.counts(mixed, :snap_fx, builds: %{snap_fx: variant}) ==
               Snapshot.counts(other, :snap_fx)

      assert [%{module: :snap_fx, lines: lines}] =
               LiveCov.SnapshotReport.module_data(mixed,
                 modules: [:snap_fx],
                 builds: %{snap_fx: variant}
               )

      assert Map.has_key?(lines, 23)
      assert %LiveCov.Stats{} = LiveCov.SnapshotReport.report(mixed, root: File.cwd!())

      # The NIF merges encoded files the same way.
      {:ok, ea} = Snapshot.encode(a)
      {:ok, eb} = Snapshot.encode(b)
      {:ok, eo} = Snapshot.encode(other)
      assert {:ok, file, [{"snap_fx", [_, _]}]} = Snapshot.merge_encoded([ea, eb, eo])
      assert {:ok, decoded} = Snapshot.decode(file)
      assert decoded.counts == mixed.counts
      assert {:error, {:bad_input, msg}} = Snapshot.merge_encoded([ea, "junk"])
      assert msg =~ "snapshot 2"
    end

    defp other_build_snapshot do
      LiveCov.stop()
      FixtureBuild.erlang(@fx, compile: [:debug_info, {:d, :VARIANT}])

      try do
        {:ok, :snap_fx} = LiveCov.Cover.compile_beam(:snap_fx)
        apply(:snap_fx, :loop, [3])
        LiveCov.snapshot(modules: [:snap_fx])
      after
        LiveCov.stop()
        FixtureBuild.erlang(@fx)
        instrument!()
      end
    end
  end

  describe "delta and dump_and_reset" do
    test "delta is what ran between two snapshots" do
      instrument!()
      work!()
      before = LiveCov.snapshot()
      apply(:snap_fx, :classify, [4])
      later = LiveCov.snapshot()
      d = LiveCov.delta(before, later)

      {:ok, lines} = LiveCov.SnapshotReport.analyse(d, :snap_fx, :calls, :line)
      ran = for {{_, l}, n} <- lines, n > 0, do: {l, n}
      assert ran == [{13, 1}, {14, 1}]
      assert Snapshot.counts(d, :snap_fx2) |> Enum.sum() == 0
      assert d.provenance == later.provenance

      # A reset in between: the delta is what ran since.
      LiveCov.Cover.reset()
      apply(:snap_fx, :add, [1, 2])
      d2 = LiveCov.delta(later, LiveCov.snapshot())
      assert Snapshot.counts(d2, :snap_fx) |> Enum.sum() == 1
      # A build that appeared later counts from zero.
      assert LiveCov.delta(%Snapshot{}, later).counts == later.counts
    end

    test "dump_and_reset reads and zeroes exactly while processes keep bumping" do
      instrument!()

      [add_index] =
        for {{:add, 2, 1, _}, i} <-
              LiveCov.Instrumented.lookup(:snap_fx)
              |> LiveCov.ModuleInfo.site_list()
              |> Enum.with_index(),
            do: i

      parent = self()
      pids = for _ <- 1..(2 * System.schedulers_online()), do: spawn(:snap_fx, :spin, [parent])

      dumps =
        for _ <- 1..50 do
          Process.sleep(2)
          LiveCov.dump_and_reset()
        end

      for p <- pids, do: send(p, :stop)
      spun = for p <- pids, do: receive(do: ({:spun, ^p, n} -> n))
      final = LiveCov.dump_and_reset()

      taken =
        for d <- dumps ++ [final], reduce: 0 do
          acc -> acc + Enum.at(Snapshot.counts(d, :snap_fx), add_index)
        end

      assert Enum.sum(spun) > 0
      assert taken == Enum.sum(spun)
      assert Enum.count(dumps, &(Enum.at(Snapshot.counts(&1, :snap_fx), add_index) > 0)) > 10
      assert Snapshot.counts(LiveCov.snapshot(), :snap_fx) |> Enum.sum() == 0
    end
  end
end
