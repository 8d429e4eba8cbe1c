# Snapshot benchmark: export, import and merge of coverage data, LiveCov's snapshot format
# side by side with OTP cover's `:cover.export/2` / `:cover.import/1` in the same run.
#
#     mix run bench/snapshot.exs [--quick] [--modules N] [--sites S] [--cover-modules M] [--reps R]
#
# LiveCov side: N synthetic modules (default 1,000) of S bump sites (default 1,000), laid out
# as 100 functions of S/100 lines, with their metadata (`LiveCov.ModuleInfo`) and counts
# registered in the real NIF counter table. Export = what `LiveCov.export/2` does (copy the
# module list, read the table, metadata, encode, write); import = `LiveCov.import/1` (read,
# check, decode, store); merge = `LiveCov.Snapshot.merge/2` of two decoded snapshots and
# `merge_encoded/1` of two files in the NIF.
#
# cover side: M generated Erlang modules (default 100; 1,000 with `--cover-modules 1000`) of
# S lines (the same layout), compiled with debug_info and cover-compiled, each function run
# once. cover-compiling 1,000 such modules takes tens of minutes on a 2-core machine, and
# `:cover.export` scans its whole table once per module (quadratic), so the default compares
# both tools at M modules and also shows LiveCov at N. "merge" for cover is importing a
# second export on top of the first (cover has no other way to combine data).
#
# Times are medians of R repetitions (default 3), wall clock, in this VM.

defmodule LiveCov.Bench.Snapshot do
  @moduledoc false

  alias LiveCov.{Imported, ModuleInfo, Snapshot, Table}

  def main(argv) do
    {opts, _, invalid} =
      OptionParser.parse(argv,
        strict: [
          quick: :boolean,
          modules: :integer,
          sites: :integer,
          cover_modules: :integer,
          reps: :integer
        ]
      )

    if invalid != [], do: raise(ArgumentError, "unknown options #{inspect(invalid)}")
    quick = Keyword.get(opts, :quick, false)
    sites = Keyword.get(opts, :sites, 1000)
    n = Keyword.get(opts, :modules, if(quick, do: 200, else: 1000))
    m = Keyword.get(opts, :cover_modules, if(quick, do: 10, else: 100))
    reps = Keyword.get(opts, :reps, if(quick, do: 1, else: 3))
    if rem(sites, 100) != 0, do: raise(ArgumentError, "--sites must be a multiple of 100")

    dir = Path.join(System.tmp_dir!(), "live_cov_snapbench_#{System.unique_integer([:positive])}")
    File.mkdir_p!(dir)
    {:ok, _} = Application.ensure_all_started(:live_cov)

    try do
      IO.puts(:stderr, "cover: generating and cover-compiling #{m} modules x #{sites} lines ...")
      cover = cover_side(m, sites, reps, dir)
      IO.puts(:stderr, "LiveCov: #{m} and #{n} synthetic modules x #{sites} sites ...")
      small = livecov_side(m, sites, reps, dir, "s")
      big = if n == m, do: small, else: livecov_side(n, sites, reps, dir, "b")
      print(m, n, sites, reps, cover, small, big)
    after
      File.rm_rf(dir)
    end
  end

  ## cover

  defp cover_side(m, sites, reps, dir) do
    src = Path.join(dir, "cover_src")
    File.mkdir_p!(src)
    names = for i <- 1..m, do: :"bench_cov_#{i}"

    {compile_ms, _} =
      timed(fn ->
        names
        |> Task.async_stream(&compile_module(&1, sites, src), timeout: :infinity, ordered: false)
        |> Stream.run()
      end)

    :code.add_patha(String.to_charlist(src))
    {:ok, _} = :cover.start()
    {:ok, quiet} = StringIO.open("")
    Process.group_leader(Process.whereis(:cover_server), quiet)

    {cover_compile_ms, results} =
      timed(fn -> :cover.compile_beam_directory(String.to_charlist(src)) end)

    true = Enum.all?(results, &match?({:ok, _}, &1))
    for mod <- names, f <- 1..100, do: apply(mod, :"f#{f}", [f])

    export = Path.join(dir, "cover.coverdata")

    export_ms =
      median(reps, fn ->
        File.rm(export)
        {ms, :ok} = timed(fn -> :cover.export(String.to_charlist(export)) end)
        ms
      end)

    size = File.stat!(export).size

    # Each import needs another file name (cover skips a file it imported before).
    copies = for r <- 1..(reps + 1), do: copy(export, dir, "cover_#{r}.coverdata")

    import_ms =
      median(reps, fn r ->
        {ms, :ok} = timed(fn -> :cover.import(String.to_charlist(Enum.at(copies, r - 1))) end)
        ms
      end)

    # A second import on top of the first: cover's merge.
    {merge_ms, :ok} = timed(fn -> :cover.import(String.to_charlist(List.last(copies))) end)
    :cover.stop()

    %{
      compile_ms: compile_ms,
      cover_compile_ms: cover_compile_ms,
      export_ms: export_ms,
      size: size,
      import_ms: import_ms,
      merge_ms: merge_ms
    }
  end

  defp copy(from, dir, name) do
    to = Path.join(dir, name)
    File.cp!(from, to)
    to
  end

  # 100 functions of `sites / 100` lines: every line a bump site for cover.
  defp compile_module(name, sites, dir) do
    per = div(sites, 100)

    funs =
      for f <- 1..100 do
        body = for l <- 1..(per - 1), do: "    _ = erlang:phash2({X, #{l}}),\n"
        "f#{f}(X) ->\n" <> Enum.join(body) <> "    X.\n"
      end

    exports = Enum.map_join(1..100, ",", &"f#{&1}/1")
    text = "-module(#{name}).\n-export([#{exports}]).\n" <> Enum.join(funs, "\n")
    path = Path.join(dir, "#{name}.erl")
    File.write!(path, text)

    {:ok, ^name} =
      :compile.file(String.to_charlist(path), [:debug_info, {:outdir, String.to_charlist(dir)}])
  end

  ## LiveCov

  defp livecov_side(n, sites, reps, dir, tag) do
    per = div(sites, 100)
    # Stands in for the registry's ETS table (LiveCov.Instrumented.modules/0 copies from one).
    registry = :ets.new(:bench_registry, [:set, :public])

    infos =
      for i <- 1..n do
        module = :"bench_lc_#{tag}_#{i}"
        {:ok, slot} = Table.register(sites)

        site_list =
          for f <- 1..100, l <- 1..per, do: {:"f#{f}", 1, 1, 2 + (f - 1) * (per + 2) + l}

        counts = for j <- 1..sites, do: if(rem(j, 7) == 0, do: 0, else: rem(j * i, 5) + 1)
        :ok = Table.add(slot, counts)

        info =
          ModuleInfo.new(
            module: module,
            slot: slot,
            sites: site_list,
            md5: :crypto.strong_rand_bytes(16),
            source: "/build/app/src/#{module}.erl",
            beam_path: String.to_charlist("/srv/app/ebin/#{module}.beam"),
            clauses: for(f <- 1..100, do: {:"f#{f}", 1, 1, per})
          )

        :ets.insert(registry, {module, info})
        info
      end

    export = fn path ->
      infos = :ets.tab2list(registry) |> Enum.map(&elem(&1, 1))
      snap = LiveCov.Capture.from_infos(infos, Table.snapshot(), labels: [bench: "snapshot"])
      {:ok, _} = Snapshot.write(snap, path)
    end

    path = Path.join(dir, "live_#{tag}.lcsnap")
    :ets.delete_all_objects(:live_cov_meta_cache)
    {cold_ms, _} = timed(fn -> export.(path) end)
    export_ms = median(reps, fn -> elem(timed(fn -> export.(path) end), 0) end)
    size = File.stat!(path).size

    import_ms =
      median(reps, fn ->
        :ok = Imported.clear()
        {ms, {:ok, _}} = timed(fn -> LiveCov.import(path) end)
        ms
      end)

    :ok = Imported.clear()
    {:ok, a} = Snapshot.read(path)
    {:ok, b} = Snapshot.read(path)
    merge_ms = median(reps, fn -> elem(timed(fn -> Snapshot.merge(a, b) end), 0) end)
    merged = Snapshot.merge(a, b)
    true = map_size(merged.counts) == n
    data = File.read!(path)

    merge_encoded_ms =
      median(reps, fn ->
        elem(timed(fn -> {:ok, _, []} = Snapshot.merge_encoded([data, data]) end), 0)
      end)

    for i <- infos, do: :ok = Table.unregister(i.slot)
    :ets.delete(registry)

    %{
      export_cold_ms: cold_ms,
      export_ms: export_ms,
      size: size,
      import_ms: import_ms,
      merge_ms: merge_ms,
      merge_encoded_ms: merge_encoded_ms
    }
  end

  ## Output

  defp print(m, n, sites, reps, c, s, b) do
    IO.puts("""
    ### Snapshot export / import / merge (#{sites} bump sites per module, median of #{reps})

    Machine: #{System.schedulers_online()} schedulers, OTP #{System.otp_release()}, Elixir #{System.version()}.
    cover side: #{m} modules generated (#{ms(c.compile_ms)} to compile) and cover-compiled (#{ms(c.cover_compile_ms)}).

    | tool | modules × sites | export | file size | import | merge |
    |---|---|---:|---:|---:|---:|
    | `:cover` (.coverdata) | #{m} × #{sites} | #{ms(c.export_ms)} | #{mb(c.size)} | #{ms(c.import_ms)} | #{ms(c.merge_ms)} (2nd import) |
    | LiveCov snapshot | #{m} × #{sites} | #{ms(s.export_ms)} (cold #{ms(s.export_cold_ms)}) | #{mb(s.size)} | #{ms(s.import_ms)} | #{ms(s.merge_ms)} (files in NIF: #{ms(s.merge_encoded_ms)}) |
    | **LiveCov / cover** | #{m} × #{sites} | **#{ratio(s.export_ms, c.export_ms)}** (cold #{ratio(s.export_cold_ms, c.export_ms)}) | **#{ratio(s.size, c.size)}** | **#{ratio(s.import_ms, c.import_ms)}** | #{ratio(s.merge_ms, c.merge_ms)} |
    #{if n != m, do: big_row(n, sites, b), else: ""}

    "cold" is the first export, which encodes every module's metadata once; later exports reuse
    it and only read and encode the counters. Target: LiveCov ≤ 0.3× cover in size and time.
    """)
  end

  defp big_row(n, sites, b) do
    "| LiveCov snapshot | #{n} × #{sites} | #{ms(b.export_ms)} (cold #{ms(b.export_cold_ms)}) | " <>
      "#{mb(b.size)} | #{ms(b.import_ms)} | #{ms(b.merge_ms)} (files in NIF: #{ms(b.merge_encoded_ms)}) |"
  end

  defp timed(fun) do
    {us, result} = :timer.tc(fun)
    {us / 1000, result}
  end

  defp median(reps, fun) do
    values =
      for r <- 1..reps do
        :erlang.garbage_collect()
        if is_function(fun, 1), do: fun.(r), else: fun.()
      end

    values |> Enum.sort() |> Enum.at(div(reps, 2))
  end

  defp ms(v) when v >= 1000, do: "#{Float.round(v / 1000, 2)} s"
  defp ms(v), do: "#{Float.round(v * 1.0, 1)} ms"
  defp mb(bytes), do: "#{Float.round(bytes / 1_048_576, 2)} MiB"
  defp ratio(a, b) when b > 0, do: "#{:erlang.float_to_binary(a / b, decimals: 4)}×"
  defp ratio(_, _), do: "n/a"
end

LiveCov.Bench.Snapshot.main(System.argv())
