defmodule LiveCov.Prune.OptionsTest do
  use ExUnit.Case, async: true

  alias LiveCov.Prune.Options

  test "defaults and valid options" do
    assert %{interval: 5_000, keep_instrumented: false} = Options.defaults()

    assert Options.validate(interval: nil, retry: 10, history: 0) ==
             {:ok, [interval: nil, retry: 10, history: 0]}
  end

  test "bad options name the option and what it takes" do
    assert {:error, {:invalid_option, msg}} = Options.validate(retry: 0)
    assert msg =~ ":retry" and msg =~ "positive integers"
    assert {:error, {:invalid_option, msg}} = Options.validate(speed: 1)
    assert msg =~ "unknown prune option :speed"
    assert {:error, {:invalid_option, _}} = Options.validate(:fast)
  end
end
