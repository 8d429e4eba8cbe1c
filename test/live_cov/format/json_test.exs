Code.require_file("../../fixtures/report_app/report_fixture.exs", __DIR__)

defmodule LiveCov.Format.JSONTest do
  use ExUnit.Case, async: true

  alias LiveCov.Format.JSON
  alias LiveCov.JSON, as: JSONText
  alias LiveCov.ReportFixture, as: Fx

  test "totals and per-file line arrays round-trip" do
    stats = Fx.stats_with_missing()
    {:ok, doc} = stats |> JSON.render([]) |> JSONText.decode()

    assert doc["coverage"] == 71.4
    assert {doc["sloc"], doc["hits"], doc["misses"]} == {14, 10, 4}
    assert doc["generated_at"] == "2024-01-02T03:04:05Z"
    assert doc["root"] == Fx.dir()
    assert doc["missing_sources"] == stats.missing_sources

    for {f, j} <- Enum.zip(stats.files, doc["files"]) do
      assert j["filename"] == f.filename
      assert j["path"] == f.path
      assert j["coverage"] == f.coverage
      assert {j["sloc"], j["hits"], j["misses"]} == {f.sloc, f.hits, f.misses}
      assert j["missing_source"] == f.missing_source?
      assert j["lines"] == Enum.map(f.source, & &1.coverage)
      refute Map.has_key?(j, "source")
    end

    erl = Enum.find(doc["files"], &(&1["filename"] == "src/report_app_erl.erl"))
    assert erl["modules"] == ["report_app_erl"]

    assert erl["functions"] == [
             %{"module" => "report_app_erl", "name" => "classify/1", "line" => 4, "count" => 4}
           ]

    assert erl["lines"] == [nil, nil, nil, nil, 0, nil, 1, nil, 3]
  end

  test "include_source adds the line texts" do
    {:ok, doc} = Fx.stats() |> JSON.render(include_source: true) |> JSONText.decode()
    calc = Enum.find(doc["files"], &(&1["filename"] == "lib/report_app/calc.ex"))
    assert Enum.at(calc["source"], 4) == "    a + b"
  end

  test "ignored modules are listed" do
    {:ok, doc} =
      Fx.stats(ignore_modules: [ReportApp.Calc]) |> JSON.render([]) |> JSONText.decode()

    assert doc["ignored_modules"] == ["ReportApp.Calc"]
  end
end
