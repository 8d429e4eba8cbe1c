defmodule LiveCov.CacheTest do
  use ExUnit.Case, async: false
  import Bitwise

  alias LiveCov.{Cache, Counter, Instrumented, ModuleInfo, Pipeline, Table}
  alias LiveCov.Instrument.{Forms, Rewrite}

  @moduletag :tmp_dir

  @fx_a """
  -module(lc_cache_fx_a).
  -export([f/1, g/1]).

  f(X) when X > 0 ->
      Y = X * 2,
      Y + 1;
  f(_) ->
      zero.

  g(L) ->
      [I + 1 || I <- L].
  """

  @fx_b """
  -module(lc_cache_fx_b).
  -export([h/1]).

  h(X) ->
      case X of
          1 -> one;
          _ -> other
      end.
  """

  setup_all do
    on_exit(fn -> LiveCov.stop() end)
    :ok
  end

  setup %{tmp_dir: tmp} do
    LiveCov.stop()
    src = Path.join(tmp, "src")
    ebin = Path.join(tmp, "ebin")
    File.mkdir_p!(src)
    File.mkdir_p!(ebin)

    for {name, text} <- [lc_cache_fx_a: @fx_a, lc_cache_fx_b: @fx_b],
        do: build(src, ebin, name, text)

    :code.add_patha(String.to_charlist(ebin))
    on_exit(fn -> :code.del_path(String.to_charlist(ebin)) end)
    {:ok, cache: Path.join(tmp, "cache"), src: src, ebin: ebin}
  end

  defp build(src, ebin, name, text) do
    path = Path.join(src, "#{name}.erl")
    File.write!(path, text)

    {:ok, ^name} =
      :compile.file(String.to_charlist(path), [
        :debug_info,
        :return_errors,
        outdir: String.to_charlist(ebin)
      ])

    :code.purge(name)
    :code.delete(name)
    :code.purge(name)
    :ok
  end

  defp entries(dir), do: Path.wildcard(Path.join(dir, "*.lcc"))

  defp delta(before), do: Map.new(Cache.stats(), fn {k, v} -> {k, v - before[k]} end)

  # Writes the entry a VM where `slot` was never used would have written: the module
  # compiled for `slot` (an id nothing in this VM has used).
  defp plant_entry(module, cache) do
    {:miss, %Cache{} = entry} = Cache.lookup(module, cache_dir: cache)
    {:ok, forms} = Forms.fetch(module)
    {:ok, munged, sites, clauses} = Rewrite.transform(forms.forms, module)
    {:ok, probe} = Table.register(0)
    :ok = Table.unregister(probe)
    slot = probe + 1000 + :rand.uniform(1000)
    {:ok, binary} = LiveCov.Instrument.compile(forms, munged, slot)

    info = Pipeline.module_info(forms, {sites, clauses}, slot, binary)

    :ok = Cache.store(entry, info)
    :ok = Cache.checkpoint(cache_dir: cache)
    {info, entry}
  end

  describe "configuration" do
    setup do
      saved = for var <- ~w(LIVE_COV_CACHE LIVE_COV_CACHE_DIR), do: {var, System.get_env(var)}
      Enum.each(saved, fn {var, _} -> System.delete_env(var) end)

      on_exit(fn ->
        Enum.each(saved, fn
          {var, nil} -> System.delete_env(var)
          {var, value} -> System.put_env(var, value)
        end)
      end)
    end

    test "on by default, under the user cache directory; off with cache: false" do
      assert Cache.dir([]) =~ "live_cov"
      assert Cache.dir(cache_dir: "/x/y") == "/x/y"
      assert Cache.dir(cache: false, cache_dir: "/x/y") == nil
    end

    test "the application environment and LIVE_COV_CACHE turn it off" do
      Application.put_env(:live_cov, :cache, false)
      assert Cache.dir([]) == nil
      assert Cache.dir(cache: true, cache_dir: "/d") == "/d"
      Application.delete_env(:live_cov, :cache)

      System.put_env("LIVE_COV_CACHE", "0")
      assert Cache.dir([]) == nil
      System.delete_env("LIVE_COV_CACHE")

      System.put_env("LIVE_COV_CACHE_DIR", "/from/env")
      assert Cache.dir([]) == "/from/env"
      System.delete_env("LIVE_COV_CACHE_DIR")
    end
  end

  describe "instrumenting through the cache" do
    test "each compile profile (optimize:) has its own entries", %{cache: cache} do
      [{:ok, _}] = Pipeline.instrument([:lc_cache_fx_a], cache_dir: cache, optimize: :full)
      assert [_] = entries(cache)
      before = Cache.stats()
      [{:ok, _}] = Pipeline.instrument([:lc_cache_fx_a], cache_dir: cache)
      assert %{misses: 1, stores: 1, hits: 0} = delta(before)
      assert [_, _] = entries(cache)
    end

    test "a miss compiles, stores an entry and records the slot mark", %{cache: cache} do
      before = Cache.stats()
      assert [{:ok, :lc_cache_fx_a}] = Pipeline.instrument([:lc_cache_fx_a], cache_dir: cache)
      info = Instrumented.lookup(:lc_cache_fx_a)
      assert [_entry] = entries(cache)
      assert %{misses: 1, stores: 1, hits: 0} = delta(before)
      {high, ""} = cache |> Path.join("slots") |> File.read!() |> Integer.parse()
      assert high > info.slot
      # The cache directory is private.
      assert {:ok, %{mode: mode}} = File.stat(cache)
      assert Bitwise.band(mode, 0o077) == 0
    end

    test "the same build again in this VM: the slot is taken, so it compiles for a fresh slot",
         %{cache: cache} do
      [{:ok, _}] = Pipeline.instrument([:lc_cache_fx_a], cache_dir: cache)
      first = Instrumented.lookup(:lc_cache_fx_a)
      before = Cache.stats()
      [{:ok, _}] = Pipeline.instrument([:lc_cache_fx_a], cache_dir: cache)
      second = Instrumented.lookup(:lc_cache_fx_a)
      assert second.slot != first.slot
      assert %{slot_taken: 1, misses: 1, stores: 1, hits: 0} = delta(before)
      # The entry now names the new slot.
      assert [_] = entries(cache)
    end

    test "entries are per counter backend: another backend's lookup misses", %{cache: cache} do
      plant_entry(:lc_cache_fx_a, cache)
      default = LiveCov.Counter.name_in([])
      other = if default == :nif, do: :native, else: :nif
      assert {:hit, info, _} = Cache.lookup(:lc_cache_fx_a, cache_dir: cache, backend: default)
      assert info.backend == default
      :ok = Counter.unregister(info.slot)
      assert {:miss, _} = Cache.lookup(:lc_cache_fx_a, cache_dir: cache, backend: other)
    end

    test "a hit loads the cached binary under its slot and counts like a compiled one",
         %{cache: cache} do
      # The reference: instrumented the normal way.
      [{:ok, _}] = Pipeline.instrument([:lc_cache_fx_a], cache: false)
      run_a()
      {:ok, want} = LiveCov.Cover.analyse(:lc_cache_fx_a, :calls, :line)
      compiled = Instrumented.lookup(:lc_cache_fx_a)
      LiveCov.stop()

      {planted, _} = plant_entry(:lc_cache_fx_a, cache)
      before = Cache.stats()
      assert [{:ok, :lc_cache_fx_a}] = Pipeline.instrument([:lc_cache_fx_a], cache_dir: cache)
      assert %{hits: 1, misses: 0, stores: 0} = delta(before)
      info = Instrumented.lookup(:lc_cache_fx_a)
      assert info.slot == planted.slot
      assert info.instrumented == planted.instrumented

      assert :lc_cache_fx_a.module_info(:md5) ==
               :beam_lib.md5(planted.instrumented) |> elem(1) |> elem(1)

      for key <- [
            :site_data,
            :functions,
            :clause_data,
            :md5,
            :source,
            :main_file,
            :beam_path,
            :original,
            :mode
          ],
          do: assert(Map.fetch!(info, key) == Map.fetch!(compiled, key), "#{key} differs")

      run_a()
      assert LiveCov.Cover.analyse(:lc_cache_fx_a, :calls, :line) == {:ok, want}
      assert :code.which(:lc_cache_fx_a) == compiled.beam_path

      # Stopping restores the original and frees the slot, which can never be claimed again.
      assert %{restored: [:lc_cache_fx_a]} = LiveCov.stop()
      assert {:error, {:slot_taken, _}} = Table.claim(planted.slot, 1)
    end

    test "a beam path target hits too", %{cache: cache, ebin: ebin} do
      {planted, _} = plant_entry(:lc_cache_fx_b, cache)
      path = Path.join(ebin, "lc_cache_fx_b.beam")
      assert [{:ok, :lc_cache_fx_b}] = Pipeline.instrument([path], cache_dir: cache)
      assert Instrumented.lookup(:lc_cache_fx_b).slot == planted.slot
      assert apply(:lc_cache_fx_b, :h, [1]) == :one
    end

    test "a changed beam (even lines only) is another key", %{cache: cache, src: src, ebin: ebin} do
      plant_entry(:lc_cache_fx_b, cache)
      # One more line at the top: same code, other lines (and :beam_lib.md5 alike).
      {:ok, old} = :beam_lib.md5(String.to_charlist(Path.join(ebin, "lc_cache_fx_b.beam")))
      build(src, ebin, :lc_cache_fx_b, "%% moved\n" <> @fx_b)
      {:ok, new} = :beam_lib.md5(String.to_charlist(Path.join(ebin, "lc_cache_fx_b.beam")))
      assert old == new

      before = Cache.stats()
      assert [{:ok, _}] = Pipeline.instrument([:lc_cache_fx_b], cache_dir: cache)
      assert %{misses: 1, hits: 0, stores: 1} = delta(before)

      lines =
        Instrumented.lookup(:lc_cache_fx_b) |> ModuleInfo.site_list() |> Enum.map(&elem(&1, 3))

      assert Enum.min(lines) == 6
      assert length(entries(cache)) == 2
    end

    test "mode: :coverage and cache: false never touch the cache", %{cache: cache} do
      assert [{:ok, _}] = Pipeline.instrument([:lc_cache_fx_a], cache_dir: cache, cache: false)
      assert [{:ok, _}] = Pipeline.instrument([:lc_cache_fx_b], cache_dir: cache, mode: :coverage)
      assert entries(cache) == []
      refute File.exists?(cache)
    end
  end

  describe "robustness" do
    test "corrupt entries are ignored, rewritten, and never crash", %{cache: cache} do
      {planted, _} = plant_entry(:lc_cache_fx_a, cache)
      [file] = entries(cache)
      good = File.read!(file)
      size = byte_size(good)
      <<head::binary-size(100), byte, tail::binary>> = good

      corruptions = [
        "",
        "garbage",
        binary_part(good, 0, div(size, 2)),
        <<head::binary, Bitwise.bxor(byte, 0xFF), tail::binary>>,
        "LCCACHE0" <> binary_part(good, 8, size - 8),
        good <> "trailing"
      ]

      for bad <- corruptions do
        File.write!(file, bad)
        before = Cache.stats()
        assert {:miss, %Cache{}} = Cache.lookup(:lc_cache_fx_a, cache_dir: cache)
        assert %{corrupt: 1, hits: 0} = delta(before)
      end

      # A payload that checks out but has the wrong shape is refused too.
      payload = :erlang.term_to_binary(%{module: :lc_cache_fx_a, slot: -1})
      key = binary_part(good, 8, 32)

      File.write!(file, [
        "LCCACHE1",
        key,
        <<byte_size(payload)::32>>,
        :erlang.md5(payload),
        payload
      ])

      assert {:miss, _} = Cache.lookup(:lc_cache_fx_a, cache_dir: cache)

      # Instrumenting after a corrupt entry compiles and rewrites a valid one.
      File.write!(file, "garbage")
      before = Cache.stats()
      assert [{:ok, _}] = Pipeline.instrument([:lc_cache_fx_a], cache_dir: cache)
      assert %{corrupt: 1, stores: 1} = delta(before)
      assert File.read!(file) != "garbage"
      assert Instrumented.lookup(:lc_cache_fx_a).slot != planted.slot
    end

    test "a cached binary that does not load is compiled afresh", %{cache: cache} do
      {planted, entry} = plant_entry(:lc_cache_fx_a, cache)
      # A well-formed entry whose binary the loader refuses.
      {:ok, data} = File.read(entry.file)
      <<magic::binary-8, key::binary-32, _size::32, _md5::binary-16, payload::binary>> = data
      term = :erlang.binary_to_term(payload)
      bad = :erlang.term_to_binary(%{term | binary: "FOR1" <> "not a beam at all"})
      File.write!(entry.file, [magic, key, <<byte_size(bad)::32>>, :erlang.md5(bad), bad])

      before = Cache.stats()
      assert [{:ok, :lc_cache_fx_a}] = Pipeline.instrument([:lc_cache_fx_a], cache_dir: cache)
      assert %{errors: 1, stores: 1, hits: 0} = delta(before)
      info = Instrumented.lookup(:lc_cache_fx_a)
      assert info.slot != planted.slot
      assert {:ok, _} = LiveCov.Counter.read(info.slot)
      assert LiveCov.Counter.read(planted.slot) |> elem(0) == :error
      assert apply(:lc_cache_fx_a, :g, [[1]]) == [2]
    end

    test "an unusable cache directory costs the cache, never the instrumentation", %{
      cache: cache
    } do
      # A file where the directory should be.
      File.mkdir_p!(Path.dirname(cache))
      File.write!(cache, "not a directory")
      before = Cache.stats()

      assert [{:ok, _}, {:ok, _}] =
               Pipeline.instrument([:lc_cache_fx_a, :lc_cache_fx_b], cache_dir: cache)

      assert %{errors: 2, stores: 0} = delta(before)
      assert apply(:lc_cache_fx_b, :h, [2]) == :other
    end

    test "an entry that is a directory is skipped", %{cache: cache} do
      {:miss, entry} = Cache.lookup(:lc_cache_fx_a, cache_dir: cache)
      File.mkdir_p!(entry.file)
      assert [{:ok, _}] = Pipeline.instrument([:lc_cache_fx_a], cache_dir: cache)
    end

    test "concurrent writers of one entry leave one valid entry and no temporary file", %{
      cache: cache
    } do
      {planted, entry} = plant_entry(:lc_cache_fx_a, cache)
      [file] = entries(cache)
      File.rm!(file)

      1..40
      |> Task.async_stream(fn _ -> Cache.store(entry, planted) end, max_concurrency: 40)
      |> Stream.run()

      assert [^file] = entries(cache)
      assert Path.wildcard(Path.join(cache, "*.tmp")) == []
      assert [{:ok, _}] = Pipeline.instrument([:lc_cache_fx_a], cache_dir: cache)
      assert Instrumented.lookup(:lc_cache_fx_a).slot == planted.slot
    end

    test "a beam that changed between lookup and compile is not stored", %{cache: cache} do
      {:miss, entry} = Cache.lookup(:lc_cache_fx_a, cache_dir: cache)

      info =
        ModuleInfo.new(module: :lc_cache_fx_a, slot: 1, sites: {}, md5: "", original: "other")

      assert Cache.store(entry, info) == :ok
      assert entries(cache) == []
    end
  end

  describe "slot mark" do
    test "stores raise it in memory; checkpoint/1 writes it once, never lowering the file", %{
      cache: cache
    } do
      {:miss, entry} = Cache.lookup(:lc_cache_fx_a, cache_dir: cache)
      {planted, _} = plant_entry(:lc_cache_fx_b, cache)
      mark = Path.join(cache, "slots")
      assert String.to_integer(File.read!(mark)) == planted.slot + 1

      # A store alone leaves the file as it is ...
      {:ok, forms} = Forms.fetch(:lc_cache_fx_a)
      {:ok, munged, sites, clauses} = Rewrite.transform(forms.forms, :lc_cache_fx_a)
      slot = planted.slot + 10
      {:ok, binary} = LiveCov.Instrument.compile(forms, munged, slot)

      info =
        ModuleInfo.new(
          module: :lc_cache_fx_a,
          slot: slot,
          sites: sites,
          clauses: clauses,
          md5: forms.md5,
          original: forms.binary,
          instrumented: binary
        )

      :ok = Cache.store(entry, info)
      assert String.to_integer(File.read!(mark)) == planted.slot + 1
      # ... the checkpoint writes it.
      :ok = Cache.checkpoint(cache_dir: cache)
      assert String.to_integer(File.read!(mark)) == slot + 1

      # A higher mark written by another VM stays.
      File.write!(mark, "#{slot + 500}")
      :ok = Cache.store(entry, %{info | slot: slot + 20})
      :ok = Cache.checkpoint(cache_dir: cache)
      assert String.to_integer(File.read!(mark)) == slot + 500
    end
  end

  describe "maintenance" do
    test "info/1 and clear/1", %{cache: cache} do
      plant_entry(:lc_cache_fx_a, cache)
      plant_entry(:lc_cache_fx_b, cache)
      assert %{entries: 2, bytes: bytes, dir: ^cache} = Cache.info(cache_dir: cache)
      assert bytes > 0
      assert Cache.clear(cache_dir: cache) == {:ok, 2}
      assert %{entries: 0} = Cache.info(cache_dir: cache)
      refute File.exists?(Path.join(cache, "slots"))
    end

    test "clear(older_than_days: n) keeps entries written or used recently", %{cache: cache} do
      {_, _} = plant_entry(:lc_cache_fx_a, cache)
      {_, entry_b} = plant_entry(:lc_cache_fx_b, cache)
      old = System.os_time(:second) - 40 * 86_400
      File.touch!(entry_b.file, old)
      assert Cache.clear(cache_dir: cache, older_than_days: 30) == {:ok, 1}
      assert [_] = entries(cache)
      assert File.exists?(Path.join(cache, "slots"))

      # A hit refreshes its entry.
      [file] = entries(cache)
      File.touch!(file, old)
      assert [{:ok, _}] = Pipeline.instrument([:lc_cache_fx_a], cache_dir: cache)
      assert Cache.clear(cache_dir: cache, older_than_days: 30) == {:ok, 0}
    end

    test "the fingerprint is stable in a VM" do
      assert Cache.fingerprint() == Cache.fingerprint()
      assert byte_size(Cache.fingerprint()) == 32
    end
  end

  describe "LiveCov.Table.claim/2 and register_from/2" do
    test "claim takes an id only if it was never used in this VM" do
      {:ok, a} = Table.register(1)
      assert {:error, {:slot_taken, msg}} = Table.claim(a, 1)
      assert msg =~ "slot #{a}"
      far = a + 5000
      assert {:ok, ^far} = Table.claim(far, 2)
      LiveCov.Native.bump(far, 1)
      assert Counter.read(far) == {:ok, [0, 1]}
      assert {:error, {:slot_taken, _}} = Table.claim(far, 2)
      :ok = Table.unregister(far)
      assert {:error, {:slot_taken, _}} = Table.claim(far, 2)
      {:ok, b} = Table.register(1)
      assert b > far
      # An id skipped over was never used: it can still be claimed.
      assert {:ok, _} = Table.claim(far - 10, 1)
      assert {:error, {:bad_slot, _}} = Table.claim(1 <<< 40, 1)
    end

    test "register_from stays above the given id and every id used" do
      {:ok, a} = Table.register(1)
      {:ok, b} = Table.register_from(a + 300, 1)
      assert b >= a + 300
      {:ok, c} = Table.register_from(0, 1)
      assert c > b
    end
  end

  describe "a fresh VM (the next test run, a node restart)" do
    @describetag :peer
    test "claims the slots of the cache and loads without compiling; a changed module misses",
         %{cache: cache, src: src, ebin: ebin} do
      targets = [:lc_cache_fx_a, :lc_cache_fx_b]
      first = in_fresh_vm(cache, targets)
      assert first.stats.misses == 2 and first.stats.stores == 2
      second = in_fresh_vm(cache, targets)
      assert second.stats.hits == 2 and second.stats.misses == 0
      assert second.slots == first.slots
      assert second.counts == first.counts

      # b changes: a still hits, b compiles for a slot above every id the cache holds.
      build(src, ebin, :lc_cache_fx_b, String.replace(@fx_b, "other", "another"))
      third = in_fresh_vm(cache, targets)
      assert third.stats.hits == 1 and third.stats.misses == 1
      assert third.slots[:lc_cache_fx_a] == first.slots[:lc_cache_fx_a]
      assert third.slots[:lc_cache_fx_b] > Enum.max(Map.values(first.slots))

      fourth = in_fresh_vm(cache, targets)
      assert fourth.stats.hits == 2
      assert fourth.slots == third.slots
    end
  end

  defp in_fresh_vm(cache, targets) do
    {:ok, peer, _node} =
      :peer.start_link(%{connection: :standard_io, args: [~c"-pa" | :code.get_path()]})

    try do
      call = fn m, f, a -> :peer.call(peer, m, f, a, 60_000) end
      {:ok, _} = call.(Application, :ensure_all_started, [:live_cov])
      results = call.(Pipeline, :instrument, [targets, [cache_dir: cache]])
      true = Enum.all?(results, &match?({:ok, _}, &1))
      _ = call.(:lc_cache_fx_a, :f, [3])
      _ = call.(:lc_cache_fx_b, :h, [1])
      infos = call.(Instrumented, :modules, [])

      %{
        stats: call.(Cache, :stats, []),
        slots: Map.new(infos, &{&1.module, &1.slot}),
        counts: Map.new(infos, &{&1.module, call.(Table, :read, [&1.slot])})
      }
    after
      :peer.stop(peer)
    end
  end

  defp run_a do
    3 = apply(:lc_cache_fx_a, :f, [1])
    :zero = apply(:lc_cache_fx_a, :f, [0])
    [2, 3] = apply(:lc_cache_fx_a, :g, [[1, 2]])
  end
end
