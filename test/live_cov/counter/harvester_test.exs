defmodule LiveCov.Counter.HarvesterTest do
  # The native backend end to end: the runtime's own line counters, harvested into the table.
  use ExUnit.Case, async: false

  alias LiveCov.{Counter, Instrumented}
  alias LiveCov.Test.FixtureBuild

  # OTP 27+ only; the module is skipped elsewhere.
  @compile {:no_warn_undefined,
            [
              {:code, :get_coverage, 2},
              {:code, :reset_coverage, 1},
              {:code, :set_coverage_mode, 1}
            ]}

  @native LiveCov.Runtime.native_coverage?()
  if not @native, do: @moduletag(skip: "OTP 27+ with the JIT (native line counters)")

  setup_all do
    dir = FixtureBuild.erlang(["test/fixtures/core/native_fx.erl"])
    on_exit(fn -> LiveCov.stop() end)
    {:ok, dir: dir}
  end

  setup do
    LiveCov.stop()
    :ok
  end

  defp start!(opts \\ []) do
    summary = LiveCov.start(:native_fx, Keyword.put_new(opts, :backend, :native))
    assert summary.instrumented == [:native_fx], inspect(summary)
    Instrumented.lookup(:native_fx)
  end

  defp line(n), do: LiveCov.Cover.analyse(:native_fx, :calls, :line) |> elem(1) |> count(n)
  defp count(lines, n), do: Enum.find_value(lines, fn {{_, l}, c} -> if l == n, do: c end)

  test "the VM counts (cover's own code), LiveCov reads through its table" do
    info = start!()
    assert info.backend == :native
    assert LiveCov.status().backend == :native
    # cover's way: line counters the VM runs inline, numbered as cover numbers them.
    assert [_ | _] = :code.get_coverage(:cover_id_line, :native_fx)
    :ok = apply(:native_fx, :hit, [4])
    assert line(3) == 4 and line(4) == 1 and line(5) == 4
    snap = LiveCov.snapshot()
    assert [%{labels: %{"backend" => "native"}}] = snap.provenance
  end

  test "taking never resets the runtime's counters, and loses no bump under load" do
    info = start!()
    parent = self()
    n = 4
    per = 20_000

    workers =
      for _ <- 1..n do
        spawn_link(fn ->
          for _ <- 1..per, do: apply(:native_fx, :add, [1, 2])
          send(parent, :done)
        end)
      end

    taken = take_until_done(info.slot, length(workers), 0)
    {:ok, rest} = Counter.take(info.slot)
    add_site = Enum.find_index(LiveCov.ModuleInfo.site_list(info), &match?({:add, 2, 1, 3}, &1))
    assert taken + Enum.at(rest, add_site) == n * per

    # The VM's counter still holds everything: LiveCov took deltas, it never reset it.
    assert :code.get_coverage(:cover_id_line, :native_fx)
           |> Enum.filter(fn {id, _} -> id == add_site + 1 end)
           |> Enum.map(&elem(&1, 1))
           |> Enum.sum() == n * per
  end

  defp take_until_done(_slot, 0, acc), do: acc

  defp take_until_done(slot, left, acc) do
    {:ok, counts} = Counter.take(slot)
    acc = acc + Enum.at(counts, 0)

    receive do
      :done -> take_until_done(slot, left - 1, acc)
    after
      2 -> take_until_done(slot, left, acc)
    end
  end

  test "a reset of the runtime's counters by another tool is seen and loses nothing" do
    start!()
    :ok = apply(:native_fx, :hit, [5])
    assert line(3) == 5
    :ok = :code.reset_coverage(:native_fx)
    :ok = apply(:native_fx, :hit, [2])
    assert line(3) == 7
    assert %{native_fx: _} = LiveCov.status().harvest.reset_elsewhere
  end

  test "code replaced by somebody else: counts so far kept, reported, never double-counted" do
    start!()
    :ok = apply(:native_fx, :hit, [3])
    assert line(3) == 3
    # A hot upgrade behind LiveCov's back: the original, or a cover-like recompile with
    # line counters of its own (same ids), must not be counted as ours.
    {:ok, _mod, bin} =
      :compile.file(~c"test/fixtures/core/native_fx.erl", [
        :binary,
        :debug_info,
        :line_coverage,
        :force_line_counters
      ])

    :code.purge(:native_fx)
    {:module, :native_fx} = :code.load_binary(:native_fx, ~c"native_fx.erl", bin)
    :ok = apply(:native_fx, :hit, [10])
    assert line(3) == 3
    assert %{native_fx: why} = LiveCov.status().harvest.lost
    assert why =~ "no longer runs the code LiveCov instrumented"
  end

  test "backend: :nif on a native runtime counts with NIF calls" do
    info = start!(backend: :nif)
    assert info.backend == :nif
    assert_raise ArgumentError, fn -> :code.get_coverage(:cover_id_line, :native_fx) end
    :ok = apply(:native_fx, :hit, [2])
    assert line(3) == 2
    assert LiveCov.status().backend == :nif
  end

  test "both backends in one node: status says mixed" do
    start!()
    dir = FixtureBuild.erlang(["test/fixtures/core/owned_fx.erl"])
    on_exit(fn -> File.rm_rf(dir) end)
    assert %{instrumented: [:owned_fx], backend: :nif} = LiveCov.start(:owned_fx, backend: :nif)
    assert LiveCov.status().backend == :mixed
  end

  test "adaptive mode never runs on native counters; :auto picks the NIF for it" do
    assert {:error, {:invalid_option, msg}} =
             LiveCov.start(:native_fx, mode: :coverage, backend: :native)

    assert msg =~ "backend: :auto or :nif"

    assert %{backend: :nif, instrumented: [:native_fx]} =
             LiveCov.start(:native_fx, mode: :coverage)
  end

  test "a module whose line counters its owner reads is left alone" do
    dir =
      FixtureBuild.erlang(["test/fixtures/core/owned_fx.erl"],
        compile: [:debug_info, :line_coverage]
      )

    old = :code.set_coverage_mode(:line_counters)

    try do
      {:module, :owned_fx} = Code.ensure_loaded(:owned_fx)
      4 = apply(:owned_fx, :twice, [2])
      before = :code.get_coverage(:line, :owned_fx)
      assert %{instrumented: [], skipped: [skip]} = LiveCov.start(:owned_fx)
      assert skip.kind == :native_coverage_in_use and skip.message =~ "leaves it alone"
      assert :code.get_coverage(:line, :owned_fx) == before
    after
      :code.set_coverage_mode(old)
      :code.purge(:owned_fx)
      :code.delete(:owned_fx)
      File.rm_rf(dir)
    end
  end
end
