defmodule LiveCov.CoverOracleTempsTest do
  @moduledoc """
  `oracle_erl_temps` has variables named like the temporaries of cover's `andalso`/`orelse`
  rewrite: OTP 25-27's `:cover` cannot instrument it ("variable '_2' unsafe"). LiveCov must,
  on every runtime, and count what `:cover` counts for a twin of it whose variables are
  renamed (same lines, same clauses).
  """
  use ExUnit.Case, async: false

  # Fixtures compiled while the tests run.
  @compile {:no_warn_undefined, [:oracle_erl_temps, :oracle_erl_temps_twin]}

  @source Path.expand("../fixtures/oracle/erlang/oracle_erl_temps.erl", __DIR__)
  @analyses for a <- [:calls, :coverage], l <- [:module, :function, :clause, :line], do: {a, l}

  setup do
    dir = Path.join(System.tmp_dir!(), "live_cov_temps_#{System.unique_integer([:positive])}")
    File.mkdir_p!(dir)
    src = File.read!(@source)

    twin =
      src
      |> String.replace("-module(oracle_erl_temps)", "-module(oracle_erl_temps_twin)")
      |> String.replace(~r/\b_1\b/, "V1")
      |> String.replace(~r/\b_2\b/, "V2")

    refute twin =~ ~r/\b_[12]\b/
    File.write!(Path.join(dir, "oracle_erl_temps.erl"), src)
    File.write!(Path.join(dir, "oracle_erl_temps_twin.erl"), twin)

    for m <- [:oracle_erl_temps, :oracle_erl_temps_twin] do
      {:ok, ^m} =
        :compile.file(~c"#{dir}/#{m}.erl", [:debug_info, :return_errors, outdir: ~c"#{dir}"])
    end

    :code.add_patha(~c"#{dir}")

    for m <- [:oracle_erl_temps, :oracle_erl_temps_twin] do
      :code.purge(m)
      {:module, ^m} = :code.load_file(m)
    end

    on_exit(fn ->
      :cover.stop()
      LiveCov.Cover.stop()

      for m <- [:oracle_erl_temps, :oracle_erl_temps_twin] do
        :code.purge(m)
        :code.delete(m)
      end

      :code.del_path(~c"#{dir}")
      File.rm_rf(dir)
    end)

    :ok
  end

  defp analyses(api, m) do
    for {a, l} <- @analyses, into: %{} do
      {{a, l}, sorted(api.analyse(m, a, l))}
    end
  end

  defp sorted({:ok, list}) when is_list(list), do: {:ok, Enum.sort(list)}
  defp sorted(other), do: other

  defp rename(term, from, to) when is_atom(term), do: if(term == from, do: to, else: term)
  defp rename(list, from, to) when is_list(list), do: Enum.map(list, &rename(&1, from, to))

  defp rename(tuple, from, to) when is_tuple(tuple),
    do: tuple |> Tuple.to_list() |> rename(from, to) |> List.to_tuple()

  defp rename(map, from, to) when is_map(map),
    do: Map.new(map, fn {k, v} -> {k, rename(v, from, to)} end)

  defp rename(other, _from, _to), do: other

  test "LiveCov instruments it and counts what :cover counts for its renamed twin" do
    {:ok, _} = :cover.start()
    {:ok, :oracle_erl_temps_twin} = :cover.compile_beam(:oracle_erl_temps_twin)
    expected_values = :oracle_erl_temps_twin.run()
    expected = analyses(:cover, :oracle_erl_temps_twin)
    :ok = :cover.stop()

    LiveCov.Cover.stop()
    {:ok, _} = LiveCov.Cover.start()
    assert {:ok, :oracle_erl_temps} = LiveCov.Cover.compile_beam(:oracle_erl_temps)
    assert :oracle_erl_temps.run() == expected_values
    got = analyses(LiveCov.Cover, :oracle_erl_temps)
    assert got == rename(expected, :oracle_erl_temps_twin, :oracle_erl_temps)
    assert {:ok, {:oracle_erl_temps, {covered, _}}} = got[{:coverage, :module}]
    assert covered > 0
  end

  test "where this runtime's :cover cannot instrument it, that is the only difference" do
    {:ok, _} = :cover.start()

    cover =
      try do
        :cover.compile_beam(:oracle_erl_temps)
      catch
        kind, reason -> {:crashed, kind, reason}
      end

    :cover.stop()

    case LiveCov.Runtime.otp_release() do
      release when release <= 27 -> refute match?({:ok, _}, cover)
      _ -> assert cover == {:ok, :oracle_erl_temps}
    end
  end
end
