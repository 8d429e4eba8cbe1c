defmodule LiveCov.CoverdataTest do
  use ExUnit.Case, async: false

  import ExUnit.CaptureIO

  alias LiveCov.{Coverdata, Imported, Snapshot}
  alias LiveCov.Test.FixtureBuild

  import LiveCov.Test.FixtureBuild, only: [snapshot_fixtures: 1]

  @analyses [:calls, :coverage]
  @levels [:line, :clause, :function, :module]

  setup_all :snapshot_fixtures

  setup do
    LiveCov.stop()
    Imported.clear()
    {:ok, dir: FixtureBuild.tmp_dir("cd")}
  end

  defp work!, do: FixtureBuild.snapshot_work!()

  # Every analysis of a module through a `:cover`-shaped API, line level sorted (cover's
  # order of line entries is its ETS order).
  defp all_analyses(api, module) do
    for a <- @analyses, l <- @levels, into: %{} do
      result =
        case api.analyse(module, a, l) do
          {:ok, list} when is_list(list) -> {:ok, Enum.sort(list)}
          other -> other
        end

      {{a, l}, result}
    end
  end

  defp with_cover(fun) do
    {:ok, pid} = :cover.start()
    # cover prints "Analysis includes data from imported files" from its own process.
    {:ok, quiet} = StringIO.open("")
    Process.group_leader(pid, quiet)

    try do
      fun.()
    after
      :cover.stop()
    end
  end

  describe "interoperation with OTP's cover" do
    test "real :cover.import/1 accepts our export and analyses as we do", %{dir: dir} do
      {:ok, :snap_fx} = LiveCov.Cover.compile_beam(:snap_fx)
      {:ok, :snap_fx2} = LiveCov.Cover.compile_beam(:snap_fx2)
      work!()
      ours = all_analyses(LiveCov.Cover, :snap_fx)
      ours2 = all_analyses(LiveCov.Cover, :snap_fx2)
      file = Path.join(dir, "ours.coverdata") |> String.to_charlist()
      assert LiveCov.Cover.export(file) == :ok
      one = Path.join(dir, "one.coverdata") |> String.to_charlist()
      assert LiveCov.Cover.export(one, :snap_fx2) == :ok

      with_cover(fn ->
        assert :cover.import(file) == :ok
        assert Enum.sort(:cover.imported_modules()) == [:snap_fx, :snap_fx2]
        assert :cover.imported() == [file]

        capture_io(fn ->
          assert all_analyses(:cover, :snap_fx) == ours
          assert all_analyses(:cover, :snap_fx2) == ours2
        end)
      end)

      with_cover(fn ->
        assert :cover.import(one) == :ok
        assert :cover.imported_modules() == [:snap_fx2]
      end)
    end

    test "we import what real :cover.export/1 wrote and analyse as cover does", %{dir: dir} do
      file = Path.join(dir, "cover.coverdata") |> String.to_charlist()

      expected =
        with_cover(fn ->
          {:ok, :snap_fx} = :cover.compile_beam(:snap_fx)
          {:ok, :snap_fx2} = :cover.compile_beam(:snap_fx2)
          work!()
          :ok = :cover.export(file)
          all_analyses(:cover, :snap_fx)
        end)

      # cover unloaded its versions: load the originals before instrumenting them.
      for m <- [:snap_fx, :snap_fx2], do: {:module, ^m} = :code.ensure_loaded(m)
      {:ok, :snap_fx} = LiveCov.Cover.compile_beam(:snap_fx)
      assert LiveCov.Cover.import(file) == :ok
      assert all_analyses(LiveCov.Cover, :snap_fx) == expected
      assert LiveCov.Cover.imported() == [file]
      assert LiveCov.Cover.imported_modules() == [:snap_fx, :snap_fx2]

      # Imported counts add to what runs here afterwards.
      work!()
      {:ok, lines} = LiveCov.Cover.analyse(:snap_fx, :calls, :line)
      {:ok, before} = expected[{:calls, :line}]
      assert Enum.sort(lines) == Enum.map(before, fn {k, n} -> {k, 2 * n} end)

      # A module instrumented after the import picks its data up too (matched by sites).
      {:ok, :snap_fx2} = LiveCov.Cover.compile_beam(:snap_fx2)
      {:ok, [{{:snap_fx2, _}, n} | _]} = LiveCov.Cover.analyse(:snap_fx2, :calls, :line)
      assert n == 1

      # Importing the same data again (any name) warns and changes nothing, as cover.
      copy = Path.join(dir, "copy.coverdata")
      File.cp!(to_string(file), copy)
      out = capture_io(fn -> assert LiveCov.Cover.import(copy) == :ok end)
      assert out =~ "WARNING" and out =~ "twice"
      assert {:ok, ^lines} = LiveCov.Cover.analyse(:snap_fx, :calls, :line) |> sort_ok()
    end
  end

  defp sort_ok({:ok, l}), do: {:ok, Enum.sort(l)}

  describe "the format" do
    test "encode/decode round trip, including records over 255 bytes (the $size header)" do
      clauses = for c <- 1..60, do: {:big_mod, :f, 1, c, 2}
      bumps = for c <- 1..60, l <- [c * 10, c * 10 + 1], do: {{:bump, :big_mod, :f, 1, c, l}, c}

      entries = [
        %{
          module: :big_mod,
          file: ~c"/x/big_mod.beam",
          clauses: clauses,
          bumps: Enum.reverse(bumps)
        },
        %{
          module: :small,
          file: ~c"/x/small.beam",
          clauses: [{:small, :g, 0, 1, 1}],
          bumps: [{{:bump, :small, :g, 0, 1, 3}, 0}]
        }
      ]

      data = IO.iodata_to_binary(Coverdata.encode(entries, :otp25))
      assert <<size, 131, _::binary>> = data
      assert size < 255
      # The clause record of big_mod needs the $size header.
      assert :binary.match(data, :erlang.term_to_binary({:"$size", 0}) |> binary_part(0, 3)) !=
               :nomatch

      assert {:ok, snap} = Coverdata.decode(data)
      assert Snapshot.modules(snap) == [:big_mod, :small]
      assert snap.content_hash == :erlang.md5(data)
      [big] = for {_, %{module: :big_mod} = m} <- snap.metas, do: m
      assert big.md5 == <<0::128>>
      assert big.beam_path == "/x/big_mod.beam"
      assert big.clauses == for({_, f, a, c, n} <- clauses, do: {f, a, c, n})

      assert Tuple.to_list(big.sites) ==
               Enum.sort(for {{:bump, _, f, a, c, l}, _} <- bumps, do: {f, a, c, l})

      assert Snapshot.counts(snap, big.hash) ==
               for({_, _, c, _} <- Tuple.to_list(big.sites), do: c)

      # Back to entries and bytes: the same records (bumps in site order).
      again = Coverdata.entries(snap, loaded: MapSet.new())

      assert {:ok, snap2} =
               again |> Coverdata.encode(:otp25) |> IO.iodata_to_binary() |> Coverdata.decode()

      assert snap2.metas |> Map.keys() |> Enum.sort() == snap.metas |> Map.keys() |> Enum.sort()
      assert snap2.counts == snap.counts

      # The OTP 27+ format: the same records without the clause tables; the same sites and
      # counts come back (without clauses).
      data27 = IO.iodata_to_binary(Coverdata.encode(entries, :otp27))
      assert byte_size(data27) < byte_size(data)
      assert {:ok, snap27} = Coverdata.decode(data27)
      [big27] = for {_, %{module: :big_mod} = m} <- snap27.metas, do: m
      assert big27.clauses == [] and big27.sites == big.sites
      assert Snapshot.counts(snap27, big27.hash) == Snapshot.counts(snap, big.hash)

      # The running OTP's format is the default, and its cover reads it.
      generation = LiveCov.Runtime.generation()
      assert Coverdata.encode(entries) == Coverdata.encode(entries, generation)
      data = if generation == :otp25, do: data, else: data27

      with_cover(fn ->
        path = Path.join(System.tmp_dir!(), "big_#{System.unique_integer([:positive])}.coverdata")
        File.write!(path, data)
        assert :cover.import(String.to_charlist(path)) == :ok

        capture_io(fn ->
          assert {:ok, {:big_mod, {120, 0}}} = :cover.analyse(:big_mod, :coverage, :module)
        end)

        File.rm(path)
      end)
    end

    test "repeated bump records are summed, as cover does" do
      rec = fn t ->
        b = :erlang.term_to_binary(t, [:compressed])
        <<byte_size(b)::8, b::binary>>
      end

      data =
        rec.({:file, :m, ~c"m.beam"}) <>
          rec.({:m, [{:m, :f, 0, 1, 1}]}) <>
          rec.({{:bump, :m, :f, 0, 1, 5}, 2}) <> rec.({{:bump, :m, :f, 0, 1, 5}, 3})

      assert {:ok, snap} = Coverdata.decode(data)
      assert Snapshot.counts(snap, :m) == [5]
    end

    test "damaged or foreign .coverdata files give clear errors and change nothing", %{dir: dir} do
      {:ok, :snap_fx} = LiveCov.Cover.compile_beam(:snap_fx)
      work!()
      good = Path.join(dir, "good.coverdata")
      :ok = LiveCov.Cover.export(good)
      data = File.read!(good)
      :ok = LiveCov.Cover.import(good)
      state = {Imported.snapshot(), Imported.files()}

      rec = fn t ->
        b = :erlang.term_to_binary(t)
        <<byte_size(b)::8, b::binary>>
      end

      size_header = :erlang.term_to_binary({:"$size", 1000})

      cases = [
        {"cut", binary_part(data, 0, byte_size(data) - 3), :truncated, "truncated"},
        {"cut_size", <<byte_size(size_header)::8, size_header::binary, 131, 1, 2>>, :truncated,
         "needs 1000 bytes"},
        {"garbage", <<5, 131, 200, 0, 0, 0>>, :bad_coverdata, "not an Erlang external term"},
        {"no_term", data <> <<3, 1, 2, 3>>, :bad_coverdata, "not an Erlang external term"},
        {"zero", <<0, 1, 2>>, :bad_coverdata, "record 1"},
        {"shape", data <> rec.({:hello, :world, 1, 2}), :bad_coverdata,
         "not a cover export record"},
        {"negative", rec.({{:bump, :m, :f, 0, 1, 5}, -1}), :bad_coverdata, "record 1 at byte 0"},
        {"bad_clause", rec.({:m, [{:other, :f, 0, 1, 1}]}), :bad_coverdata,
         "not a cover export record"},
        {"text", "this is plain text, not coverage", :bad_coverdata,
         "not an Erlang external term"}
      ]

      for {name, bytes, kind, text} <- cases do
        path = Path.join(dir, name)
        File.write!(path, bytes)
        assert {:error, {^kind, msg}} = LiveCov.Cover.import(path), name
        assert msg =~ text, "#{name}: #{msg}"
        assert msg =~ path
        assert {:error, {^kind, _}} = Coverdata.decode(bytes)
        assert {Imported.snapshot(), Imported.files()} == state
      end

      # An empty file is an empty cover export: cover imports it as nothing, so do we.
      empty = Path.join(dir, "empty.coverdata")
      File.write!(empty, "")
      assert LiveCov.Cover.import(empty) == :ok
      # As a LiveCov snapshot it is an error.
      assert {:error, {:empty, _}} = LiveCov.import(empty)
    end
  end

  describe "cover-shaped errors" do
    test "export and import errors have cover's shapes", %{dir: dir} do
      assert LiveCov.Cover.export(Path.join(dir, "x"), :nope) ==
               {:error, {:not_cover_compiled, :nope}}

      {:ok, :snap_fx} = LiveCov.Cover.compile_beam(:snap_fx)
      bad = ~c"/proc/no/such/dir/x.coverdata"
      assert {:error, {:cant_open_file, ^bad, :enoent}} = LiveCov.Cover.export(bad)
      missing = ~c"/no/such/file.coverdata"
      assert LiveCov.Cover.import(missing) == {:error, {:cant_open_file, missing, :enoent}}
      assert LiveCov.Cover.imported() == []
      assert LiveCov.Cover.imported_modules() == []

      # A LiveCov snapshot is accepted by the cover facade too.
      {:ok, _} = LiveCov.export(Path.join(dir, "s.lcsnap"))
      assert LiveCov.Cover.import(Path.join(dir, "s.lcsnap")) == :ok
      assert LiveCov.Cover.imported_modules() == [:snap_fx]
    end

    test "export of an imported-only module writes its imported data", %{dir: dir} do
      {:ok, :snap_fx2} = LiveCov.Cover.compile_beam(:snap_fx2)
      apply(:snap_fx2, :hello, [~c"y"])
      {:ok, _} = LiveCov.export(Path.join(dir, "s.lcsnap"))
      LiveCov.stop()
      {:ok, _} = LiveCov.import(Path.join(dir, "s.lcsnap"))
      out = Path.join(dir, "only.coverdata")
      assert LiveCov.Cover.export(out, :snap_fx2) == :ok
      assert {:ok, snap} = Coverdata.read(out)
      assert Snapshot.counts(snap, :snap_fx2) |> Enum.sum() == 2
    end
  end
end
