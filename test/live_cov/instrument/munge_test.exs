Code.require_file("../../fixtures/instr/instr_fixtures.exs", __DIR__)

defmodule LiveCov.Instrument.MungeTest do
  # Uses OTP's cover (a global server) as the oracle.
  use ExUnit.Case, async: false

  alias LiveCov.Instrument.{Forms, Munge}
  alias LiveCov.Test.{CoverInternals, InstrFixtures}

  setup_all do
    %{beams: InstrFixtures.build!()}
  end

  setup do
    :cover.stop()

    on_exit(fn ->
      :cover.stop()
    end)
  end

  describe "cover oracle" do
    # OTP 27+'s cover instruments with sys_coverage (LiveCov.Instrument.SysCoverageTest).
    if LiveCov.Runtime.generation() != :otp25, do: @describetag(skip: "OTP 25's rewrite")

    for module <- [:instr_erl, :instr_maybe, LiveCovFixture.InstrEx] do
      test "sites, clauses and code equal cover's for #{inspect(module)}", %{beams: beams} do
        assert_same_as_cover(unquote(module), Map.fetch!(beams, unquote(module)))
      end
    end
  end

  # Cover-compiles `beam` and compares its internal tables and its
  # instrumented binary with ours.
  defp assert_same_as_cover(module, beam) do
    {:ok, forms} = Forms.fetch(beam)
    assert {:ok, munged, sites, clauses} = Munge.transform(forms.forms, module)

    cover = CoverInternals.compile!(module, beam)
    [cover_count] = for {^module, n} <- cover.mapping, do: n
    ours = CoverInternals.bumps_of(module, sites)

    assert sites != []
    assert length(sites) == length(Enum.uniq(sites))
    assert cover_count == length(sites)
    assert MapSet.equal?(ours, cover.bumps), diff_message(ours, cover.bumps)
    assert Enum.map(clauses, fn {f, a, c, n} -> {module, f, a, c, n} end) == cover.clauses

    # Patched with cover's own counter expression and compiled with cover's
    # options, our rewrite yields a byte-identical beam: every placeholder
    # stands exactly where cover puts its bump.
    patched = Munge.patch(munged, &cover_bump(module, &1))
    assert {:ok, ^module, binary} = :compile.forms(patched, CoverInternals.options(forms))
    assert binary == cover.binary
  end

  defp cover_bump(module, index) do
    a = :erl_anno.new(0)
    key = {:tuple, a, [{:atom, a, :cover}, {:atom, a, module}]}
    cref = {:call, a, {:remote, a, {:atom, a, :persistent_term}, {:atom, a, :get}}, [key]}

    {:call, a, {:remote, a, {:atom, a, :counters}, {:atom, a, :add}},
     [cref, {:integer, a, index + 1}, {:integer, a, 1}]}
  end

  defp diff_message(ours, cover) do
    "only ours: #{inspect(MapSet.difference(ours, cover) |> Enum.sort())}\n" <>
      "only cover: #{inspect(MapSet.difference(cover, ours) |> Enum.sort())}"
  end

  describe "against the runtime's transform (OTP 27+)" do
    if not LiveCov.Instrument.SysCoverage.available?(),
      do: @describetag(skip: "OTP 27+ (sys_coverage)")

    # This rewrite runs on OTP 25-26 only; there it must place the sites sys_coverage places
    # (OTP 27's rules are OTP 26's for these forms), map comprehensions included. Forms newer
    # than OTP 26 (multi-valued templates) are left to the runtime's own transform.
    test "the same sites on every oracle fixture up to OTP 28's forms" do
      build = LiveCov.Test.Oracle.build!()

      try do
        newer = for {m, min, _} <- LiveCov.Test.Oracle.versioned_headers(), min >= 29, do: m

        for {m, path} <- build.beams, m not in newer do
          {:ok, forms} = Forms.fetch(path)
          {:ok, _, ours, _} = Munge.transform(forms.forms, m)
          {:ok, _, theirs, []} = LiveCov.Instrument.SysCoverage.transform(forms.forms, m)
          assert ours == theirs, inspect(m)
        end
      after
        LiveCov.Test.Oracle.cleanup(build)
      end
    end
  end

  describe "rules" do
    test "included functions are not instrumented, main-file ones are", %{beams: beams} do
      {:ok, forms} = Forms.fetch(beams[:instr_erl])
      {:ok, _munged, sites, clauses} = Munge.transform(forms.forms, :instr_erl)

      refute Enum.any?(sites, &match?({:incl_helper, _, _, _}, &1))
      refute Enum.any?(clauses, &match?({:incl_helper, _, _, _}, &1))
      assert Enum.any?(sites, &match?({:incl, 1, 1, _}, &1))
    end

    test "a multi-clause expression sharing its line with the next one gets an extra bump",
         %{beams: beams} do
      {:ok, forms} = Forms.fetch(beams[:instr_erl])
      {:ok, munged, sites, _clauses} = Munge.transform(forms.forms, :instr_erl)

      [{:function, _, :same_line, 1, [{:clause, _, _, _, body}]}] =
        for {:function, _, :same_line, 1, _} = f <- munged, do: f

      # case X of 1 -> a; 2 -> b; 3 -> c end, done(X)   (clauses 2, 3 and done/1 share a line)
      [{:BUMP, case_line, _}, {:case, _, _, [c1, c2, c3]}, {:call, _, _, _}] = body
      shared = case_line + 2
      {:ok, shared_index} = find_index(sites, {:same_line, 1, 1, shared})

      {:clause, _, _, _, c1_body} = c1

      assert [{:BUMP, _, _}, {:match, _, {:var, _, var}, {:atom, _, :a}}, bump, {:var, _, var}] =
               c1_body

      assert bump == {:BUMP, shared, shared_index}
      assert var == :"$cover$ #{shared}"
      assert {:clause, _, _, _, [{:BUMP, ^shared, ^shared_index}, {:atom, _, :b}]} = c2
      # clauses are alternatives: the third one bumps the shared line again
      assert {:clause, _, _, _, [{:BUMP, ^shared, ^shared_index}, {:atom, _, :c}]} = c3
    end

    test "placeholders, 0-based indices and clause numbering" do
      forms =
        parse("""
        -module(m).
        -export([f/1]).
        f(0) -> zero;
        f(X) ->
            Y = X + 1,
            case Y of 1 -> one; _ ->
                 [Z || Z <- [Y], Z > 0] end.
        g() -> ok.
        """)

      assert {:ok, munged, sites, clauses} = Munge.transform(forms, :m)

      assert sites == [
               {:f, 1, 1, 3},
               {:f, 1, 2, 5},
               {:f, 1, 2, 6},
               {:f, 1, 2, 7},
               {:g, 0, 1, 8}
             ]

      assert clauses == [{:f, 1, 1, 1}, {:f, 1, 2, 3}, {:g, 0, 1, 1}]

      [f, g] = for {:function, _, _, _, _} = fun <- munged, do: fun
      {:function, _, :f, 1, [{:clause, _, _, _, b1}, {:clause, _, _, _, b2}]} = f
      assert [{:BUMP, 3, 0}, {:atom, 3, :zero}] = b1
      assert [{:BUMP, 5, 1}, {:match, _, _, _}, {:BUMP, 6, 2}, {:case, _, _, case_clauses}] = b2
      [_one, {:clause, _, _, _, [{:BUMP, 7, 3}, {:lc, _, template, qualifiers}]}] = case_clauses
      # the template is wrapped in a block, and each qualifier that did not
      # bump on its own gets a counted `true` filter in front of it
      assert {:block, _, [{:var, _, :Z}]} = template

      assert [
               {:block, _, [{:atom, _, true}]},
               {:generate, _, _, _},
               {:block, _, _},
               {:op, _, :>, _, _}
             ] = qualifiers

      assert {:function, _, :g, 0, [{:clause, _, _, _, [{:BUMP, 8, 4}, {:atom, 8, :ok}]}]} = g
    end

    test "andalso/orelse in bodies become case, guards are kept" do
      forms =
        parse("""
        -module(m).
        f(A, B) when A andalso B ->
            A andalso
              B.
        """)

      {:ok, munged, sites, _} = Munge.transform(forms, :m)

      [{:function, _, :f, 2, [{:clause, _, _, guards, body}]}] =
        for {:function, _, _, _, _} = f <- munged, do: f

      assert [[{:op, _, :andalso, _, _}]] = guards
      assert [{:BUMP, 3, 0}, {:case, _, {:var, _, :A}, [t, fa, generated]}] = body
      assert {:clause, _, [{:atom, _, true}], [], [{:BUMP, 4, 1}, {:var, 4, :B}]} = t
      assert {:clause, _, [{:atom, _, false}], [], [{:atom, _, false}]} = fa
      assert {:clause, anno, [{:var, _, :_1}], [], [_error_call]} = generated
      assert :erl_anno.generated(anno)
      assert sites == [{:f, 2, 1, 3}, {:f, 2, 1, 4}]
    end

    test "the parse_transform attribute is dropped, other attributes kept" do
      forms =
        parse(
          "-module(m).\n-compile({parse_transform, pt}).\n-compile(export_all).\nf() -> ok.\n"
        )

      {:ok, munged, _, _} = Munge.transform(forms, :m)
      refute Enum.any?(munged, &match?({:attribute, _, :compile, {:parse_transform, _}}, &1))
      assert Enum.any?(munged, &match?({:attribute, _, :compile, :export_all}, &1))
    end

    test "functions after an include switch are skipped until the main file returns" do
      forms =
        parse("""
        -module(m).
        -file("inc.hrl", 1).
        h() -> ok.
        -file("m.erl", 4).
        f() -> ok.
        """)

      {:ok, _munged, sites, clauses} = Munge.transform(forms, :m)
      assert sites == [{:f, 0, 1, 5}]
      assert clauses == [{:f, 0, 1, 1}]
    end

    test "forms without a -file attribute are an error, not a crash" do
      assert {:error, {:no_file_attribute, msg}} =
               Munge.transform([{:attribute, 1, :module, :m}], :m)

      assert msg =~ "-file"
      assert {:error, {:bad_forms, _}} = Munge.transform(:nope, :m)
    end
  end

  describe "patch/2" do
    test "replaces every placeholder and the result compiles", %{beams: beams} do
      for {module, beam} <- beams do
        {:ok, forms} = Forms.fetch(beam)
        {:ok, munged, sites, _} = Munge.transform(forms.forms, module)

        seen = :counters.new(1, [])

        patched =
          Munge.patch(munged, fn index ->
            :counters.add(seen, 1, 1)

            {:call, 0, {:remote, 0, {:atom, 0, :erlang}, {:atom, 0, :put}},
             [{:atom, 0, :bumped}, {:integer, 0, index}]}
          end)

        refute contains_placeholder?(patched)
        assert :counters.get(seen, 1) >= length(sites)
        assert {:ok, ^module, bin} = :compile.forms(patched, [:return_errors])
        assert is_binary(bin)
      end
    end

    test "attributes are never touched" do
      forms = [{:attribute, 1, :my_attr, {:BUMP, 1, 0}}, {:BUMP, 2, 7}]

      assert Munge.patch(forms, fn i -> {:integer, 0, i} end) ==
               [{:attribute, 1, :my_attr, {:BUMP, 1, 0}}, {:integer, 0, 7}]
    end
  end

  defp contains_placeholder?({:BUMP, _, i}) when is_integer(i), do: true
  defp contains_placeholder?({:attribute, _, _, _}), do: false
  defp contains_placeholder?(l) when is_list(l), do: Enum.any?(l, &contains_placeholder?/1)

  defp contains_placeholder?(t) when is_tuple(t),
    do: t |> Tuple.to_list() |> contains_placeholder?()

  defp contains_placeholder?(_), do: false

  defp find_index(sites, site) do
    case Enum.find_index(sites, &(&1 == site)) do
      nil -> :error
      i -> {:ok, i}
    end
  end

  # Parses Erlang source text into forms, with a leading -file attribute.
  defp parse(source) do
    forms = LiveCov.Test.ErlSource.forms(source)
    :epp.interpret_file_attribute([{:attribute, 1, :file, {~c"m.erl", 1}} | forms])
  end
end
