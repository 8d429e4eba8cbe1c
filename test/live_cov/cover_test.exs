defmodule LiveCov.CoverTest do
  # The oracle suite compares LiveCov.Cover with :cover at large; these are the facade's own
  # edges: imported-only modules and reset forgetting imports, as :cover does.
  use ExUnit.Case, async: false

  alias LiveCov.Cover
  alias LiveCov.Test.FixtureBuild

  setup_all do
    FixtureBuild.erlang("test/fixtures/core/core_loop.erl")
    :ok
  end

  setup do
    Cover.stop()
    LiveCov.Imported.clear()
    on_exit(fn -> Cover.stop() && LiveCov.Imported.clear() end)
    :ok
  end

  test "a module known only from imported data is analysed from it; reset/0 forgets it" do
    file =
      Path.join(System.tmp_dir!(), "cover_test_#{System.unique_integer([:positive])}.coverdata")

    {:ok, :core_loop} = Cover.compile_beam(:core_loop)
    3 = apply(:core_loop, :add, [1, 2])
    {:ok, expected} = Cover.analyse(:core_loop, :calls, :line)
    :ok = Cover.export(file, :core_loop)
    :ok = Cover.stop()

    assert {:error, {:not_cover_compiled, :core_loop}} = Cover.analyse(:core_loop, :calls, :line)
    :ok = Cover.import(file)
    assert Cover.imported_modules() == [:core_loop]
    assert {:ok, ^expected} = Cover.analyse(:core_loop, :calls, :line)
    assert {:result, result, []} = Cover.analyse([:core_loop], :calls, :line)
    assert Enum.sort(result) == Enum.sort(expected)
    assert {:result, all, []} = Cover.analyse(:calls, :line)
    assert Enum.sort(all) == Enum.sort(expected)

    :ok = Cover.reset()
    assert Cover.imported_modules() == []
    assert {:error, {:not_cover_compiled, :core_loop}} = Cover.analyse(:core_loop, :calls, :line)
  end

  test "backend: is LiveCov's option of compile_beam/2; a bad one is one error for the call" do
    assert {:error, {:invalid_option, msg}} = Cover.compile_beam(:core_loop, backend: :fast)
    assert msg =~ "backend: :fast" and msg =~ "use :auto, :native"

    assert {:error, {:invalid_option, _}} =
             Cover.compile_beam([:core_loop, :core_loop], backend: :fast)

    assert {:error, {:invalid_option, _}} = Cover.compile_beam_directory(".", backend: 3)
    assert Cover.modules() == []

    assert {:ok, :core_loop} = Cover.compile_beam(:core_loop, backend: :nif)
    assert [%{module: :core_loop, backend: :nif}] = LiveCov.instrumented()

    unless LiveCov.Runtime.native_coverage?() do
      assert {:error, {:native_unavailable, msg}} =
               Cover.compile_beam(:core_loop, backend: :native)

      assert msg =~ "use backend: :auto or :nif"
    end
  end
end
