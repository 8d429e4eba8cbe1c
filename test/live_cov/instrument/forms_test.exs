Code.require_file("../../fixtures/instr/instr_fixtures.exs", __DIR__)

defmodule LiveCov.Instrument.FormsTest do
  # Loads modules and uses cover (global state).
  use ExUnit.Case, async: false

  alias LiveCov.Instrument.Forms
  alias LiveCov.Test.InstrFixtures

  setup_all do
    %{beams: InstrFixtures.build!()}
  end

  describe "fetch/1" do
    test "an Erlang module by name", %{beams: beams} do
      assert {:ok, %Forms{} = f} = Forms.fetch(:instr_erl)
      assert f.module == :instr_erl
      assert f.beam_path == beams[:instr_erl]
      assert f.binary == File.read!(beams[:instr_erl])
      assert {:ok, {:instr_erl, f.md5}} == :beam_lib.md5(f.binary)
      assert List.to_string(f.main_file) =~ ~r"instr_erl\.erl$"
      assert List.to_string(f.source) =~ ~r"fixtures/instr/instr_erl\.erl$"
      # include dir kept, debug_info/return_errors/outdir dropped as cover does
      assert f.compile_options == [{:i, String.to_charlist(InstrFixtures.source_dir())}]
      assert {:attribute, _, :file, {main, _}} = hd(f.forms)
      assert main == f.main_file

      assert Enum.any?(f.forms, fn
               {:attribute, _, :file, {file, _}} -> List.to_string(file) =~ "instr_incl.hrl"
               _ -> false
             end)

      assert Enum.any?(f.forms, &match?({:function, _, :bools, 2, _}, &1))
    end

    test "the same module by path, as charlist or string", %{beams: beams} do
      {:ok, by_name} = Forms.fetch(:instr_erl)
      assert {:ok, ^by_name} = Forms.fetch(beams[:instr_erl])
      assert {:ok, ^by_name} = Forms.fetch(List.to_string(beams[:instr_erl]))
    end

    test "a beam that is not loaded (and not even loadable)", %{beams: beams} do
      assert {:ok, f} = Forms.fetch(beams[:instr_maybe])
      assert f.module == :instr_maybe
      assert Enum.any?(f.forms, &match?({:function, _, :m2, 1, _}, &1))
    end

    test "an Elixir module (abstract code through the :elixir_erl backend)", %{beams: beams} do
      assert {:ok, f} = Forms.fetch(LiveCovFixture.InstrEx)
      assert f.beam_path == beams[LiveCovFixture.InstrEx]
      assert List.to_string(f.main_file) =~ ~r"instr_ex\.ex$"
      assert Enum.any?(f.forms, &match?({:function, _, :with_else, 1, _}, &1))
    end

    test "from_binary/2 works on an in-memory beam", %{beams: beams} do
      bin = File.read!(beams[:instr_erl])
      assert {:ok, f} = Forms.from_binary(bin)
      assert f.module == :instr_erl and f.beam_path == nil
    end
  end

  describe "fetch/1 refusals" do
    test "unknown module, missing path, nonsense" do
      assert {:error, {:no_beam, msg}} = Forms.fetch(:no_such_module_xyz)
      assert msg =~ ":no_such_module_xyz"
      assert {:error, {:no_beam, msg}} = Forms.fetch("/nonexistent/dir/x.beam")
      assert msg =~ "/nonexistent/dir/x.beam"
      assert {:error, {:no_beam, _}} = Forms.fetch(123)
    end

    test "preloaded modules" do
      assert {:error, {:no_beam, msg}} = Forms.fetch(:erlang)
      assert msg =~ "preloaded"
    end

    test "a corrupt beam file" do
      dir = InstrFixtures.tmp_dir!("bad")
      path = Path.join(dir, "garbage.beam")
      File.write!(path, "FOR1 this is not a beam")
      assert {:error, {:bad_beam, msg}} = Forms.fetch(path)
      assert msg =~ path
    end

    test "compiled without debug_info" do
      dir = InstrFixtures.tmp_dir!("nodbg")

      beam =
        InstrFixtures.compile_erl!(:instr_nodbg, "-module(instr_nodbg).\nf() -> ok.\n", dir, [])

      assert {:error, {:no_debug_info, msg}} = Forms.fetch(beam)
      assert msg =~ "debug_info"
      assert msg =~ "@compile :debug_info"
    end

    test "encrypted debug_info without a key" do
      dir = InstrFixtures.tmp_dir!("crypt")

      beam =
        InstrFixtures.compile_erl!(:instr_crypt, "-module(instr_crypt).\nf() -> ok.\n", dir, [
          :debug_info,
          {:debug_info_key, ~c"secret key"}
        ])

      :beam_lib.clear_crypto_key_fun()
      assert {:error, {:encrypted_debug_info, msg}} = Forms.fetch(beam)
      assert msg =~ "instr_crypt"
    end

    test "missing debug_info backend" do
      {:ok, :instr_nobackend, bin} =
        :compile.forms([{:attribute, 1, :module, :instr_nobackend}], [
          {:debug_info, {:no_such_backend_xyz, :data}}
        ])

      assert {:error, {:missing_backend, msg}} = Forms.from_binary(bin)
      assert msg =~ "no_such_backend_xyz"
    end

    test "no -file attribute" do
      forms = [
        {:attribute, 1, :module, :instr_nofile},
        {:function, 2, :f, 0, [{:clause, 2, [], [], [{:atom, 2, :ok}]}]}
      ]

      {:ok, :instr_nofile, bin} = :compile.forms(forms, [:debug_info])
      assert {:error, {:no_file_attribute, msg}} = Forms.from_binary(bin)
      assert msg =~ "instr_nofile"
    end

    test "sticky modules" do
      assert {:error, {:sticky, msg}} = Forms.fetch(:lists)
      assert msg =~ ":lists"
      assert {:error, {:sticky, _}} = Forms.fetch(:code.which(:lists))
    end

    test "NIF modules: load_nif calls and -nifs attributes" do
      dir = InstrFixtures.tmp_dir!("nif")

      beam =
        InstrFixtures.compile_erl!(
          :instr_nif,
          """
          -module(instr_nif).
          -on_load(init/0).
          -export([f/0]).
          init() -> erlang:load_nif("./instr_nif", 0).
          f() -> erlang:nif_error(not_loaded).
          """,
          dir
        )

      assert {:error, {:nif_module, msg}} = Forms.fetch(beam)
      assert msg =~ "instr_nif"

      beam =
        InstrFixtures.compile_erl!(
          :instr_nifs,
          "-module(instr_nifs).\n-nifs([f/0]).\n-export([f/0]).\nf() -> erlang:nif_error(x).\n",
          dir
        )

      assert {:error, {:nif_module, msg}} = Forms.fetch(beam)
      assert msg =~ "-nifs"

      # -on_load alone is fine
      beam =
        InstrFixtures.compile_erl!(
          :instr_onload,
          "-module(instr_onload).\n-on_load(init/0).\ninit() -> ok.\n",
          dir
        )

      assert {:ok, _} = Forms.fetch(beam)
    end

    test "LiveCov's own modules" do
      for m <- [LiveCov, LiveCov.Instrument, LiveCov.Instrument.Forms, :live_cov, :live_cov_nif] do
        assert {:error, {:live_cov_module, msg}} = Forms.fetch(m)
        assert msg =~ "never instruments itself"
      end

      refute Forms.live_cov_module?(LiveCovFixture.InstrEx)
      refute Forms.live_cov_module?(:livecov)
    end

    test "modules cover-compiled by OTP's cover" do
      {:ok, _} = :cover.start()
      on_exit(fn -> :cover.stop() end)
      assert {:ok, :instr_erl} = :cover.compile_beam(:instr_erl)
      assert {:error, {:no_beam, msg}} = Forms.fetch(:instr_erl)
      assert msg =~ "cover"
    end
  end

  test "filter_options/1 keeps what cover keeps" do
    opts = [
      :debug_info,
      {:i, ~c"inc"},
      {:i, :not_a_list},
      {:d, :A},
      {:d, :B, 1},
      :export_all,
      :tuple_calls,
      {:feature, :maybe_expr, :enable},
      {:feature, :x, :disable},
      {:outdir, ~c"x"},
      :report
    ]

    assert Forms.filter_options(opts) == [
             {:i, ~c"inc"},
             {:d, :A},
             {:d, :B, 1},
             :export_all,
             :tuple_calls,
             {:feature, :maybe_expr, :enable},
             {:feature, :x, :disable}
           ]
  end
end
