Code.require_file("../../fixtures/instr/instr_fixtures.exs", __DIR__)

defmodule LiveCov.Instrument.SysCoverageTest do
  # Uses OTP's cover (a global server) as the oracle.
  use ExUnit.Case, async: false

  # Fixtures compiled while the tests run.
  @compile {:no_warn_undefined, [:lc_temps]}

  alias LiveCov.Instrument.{Forms, Rewrite, SysCoverage}
  alias LiveCov.Test.{CoverInternals, InstrFixtures}

  if not SysCoverage.available?(), do: @moduletag(skip: "OTP 27+ (sys_coverage)")

  setup_all do
    %{beams: InstrFixtures.build!()}
  end

  setup do
    :cover.stop()
    on_exit(fn -> :cover.stop() end)
  end

  test "the rewrite of OTP 27+ runtimes is this one" do
    assert LiveCov.Runtime.generation() == :otp27
    forms = parse("-module(m).\n-export([f/1]).\nf(X) -> X + 1.\n")
    assert Rewrite.transform(forms, :m) == SysCoverage.transform(forms, :m)
  end

  describe "cover oracle" do
    for module <- [:instr_erl, :instr_maybe, LiveCovFixture.InstrEx] do
      test "sites and code equal cover's for #{inspect(module)}", %{beams: beams} do
        assert_same_as_cover(unquote(module), Map.fetch!(beams, unquote(module)))
      end
    end
  end

  # Cover-compiles `beam` and compares its counter mapping and its instrumented binary with
  # ours: patched back into cover's markers and compiled with cover's options, our forms give
  # cover's binary byte for byte.
  defp assert_same_as_cover(module, beam) do
    {:ok, forms} = Forms.fetch(beam)
    assert {:ok, munged, sites, []} = SysCoverage.transform(forms.forms, module, native: false)

    cover = CoverInternals.compile!(module, beam)
    ours = CoverInternals.bumps_of(module, sites)

    assert sites != []
    assert length(sites) == length(Enum.uniq(sites))
    assert MapSet.equal?(ours, cover.bumps)

    markers = back_to_markers(munged)
    options = [:report_errors, :force_line_counters | CoverInternals.options(forms)]

    # Only the temporaries of andalso/orelse are named differently (ours never collide).
    assert {:ok, ^module, binary} = :compile.forms(markers, options)

    if not expands_operators?(forms.forms) do
      assert binary == cover.binary
    else
      assert :beam_lib.chunks(binary, [:exports]) == :beam_lib.chunks(cover.binary, [:exports])
    end
  end

  defp back_to_markers(forms) do
    LiveCov.Instrument.Walk.replace_markers(forms, :BUMP, fn line, index ->
      {:executable_line, line, index + 1}
    end)
  end

  defp expands_operators?(forms),
    do: Enum.any?(forms, &(LiveCov.Instrument.Expand.form(&1) != &1))

  test "on a runtime with native coverage, line-0 sites keep their counter but get no bump",
       %{beams: beams} do
    {:ok, forms} = Forms.fetch(beams[LiveCovFixture.InstrEx])

    {:ok, native, sites, []} =
      SysCoverage.transform(forms.forms, LiveCovFixture.InstrEx, native: true)

    {:ok, emu, ^sites, []} =
      SysCoverage.transform(forms.forms, LiveCovFixture.InstrEx, native: false)

    zero = for {{_f, _a, _c, 0}, i} <- Enum.with_index(sites), do: i
    assert zero != [], "Elixir's __info__/1 has line-0 sites"
    assert Enum.sort(placeholders(emu)) == Enum.to_list(0..(length(sites) - 1))
    assert Enum.sort(placeholders(native)) == Enum.to_list(0..(length(sites) - 1)) -- zero
  end

  defp placeholders(term, acc \\ [])
  defp placeholders({:BUMP, _, i}, acc), do: [i | acc]
  defp placeholders(t, acc) when is_tuple(t), do: placeholders(Tuple.to_list(t), acc)
  defp placeholders([h | t], acc), do: placeholders(t, placeholders(h, acc))
  defp placeholders(_, acc), do: acc

  test "a function with variables named like the temporaries instruments and runs" do
    forms =
      parse("""
      -module(lc_temps).
      -export([f/3]).
      f(_1, A, B) ->
          X = A andalso B,
          Y = A orelse B,
          {_1, X, Y}.
      """)

    assert {:ok, munged, _sites, []} = SysCoverage.transform(forms, :lc_temps)
    patched = LiveCov.Instrument.Munge.patch(munged, fn _ -> {:atom, 0, :ok} end)
    assert {:ok, :lc_temps, bin} = :compile.forms(patched, [:binary])
    {:module, :lc_temps} = :code.load_binary(:lc_temps, ~c"lc_temps.erl", bin)
    assert :lc_temps.f(1, true, false) == {1, false, true}
    :code.purge(:lc_temps)
    :code.delete(:lc_temps)
  end

  defp parse(source),
    do: [{:attribute, 1, :file, {~c"lc_temps.erl", 1}} | LiveCov.Test.ErlSource.forms(source)]
end
