Code.require_file("../../fixtures/report_app/report_fixture.exs", __DIR__)

defmodule LiveCov.Format.CoverallsTest do
  use ExUnit.Case, async: true

  alias LiveCov.Format.Coveralls
  alias LiveCov.JSON, as: JSONText
  alias LiveCov.ReportFixture, as: Fx

  defp decode(stats, opts) do
    {:ok, doc} = stats |> Coveralls.render(opts) |> JSONText.decode()
    doc
  end

  test "source_files round-trip with digest, coverage and source" do
    stats = Fx.stats_with_missing()
    doc = decode(stats, [])
    assert Map.keys(doc) == ["source_files"]
    files = doc["source_files"]
    assert length(files) == 5

    for {f, j} <- Enum.zip(stats.files, files) do
      assert j["name"] == f.filename
      assert j["coverage"] == Enum.map(f.source, & &1.coverage)
      assert j["source"] == LiveCov.Stats.Source.text(f)
      assert j["source_digest"] == :erlang.md5(j["source"]) |> Base.encode16(case: :lower)
    end

    calc = Enum.find(files, &(&1["name"] == "lib/report_app/calc.ex"))
    assert calc["source"] == File.read!(Path.join(Fx.dir(), "lib/report_app/calc.ex"))
    assert calc["coverage"] == Fx.expected_lines()["lib/report_app/calc.ex"]
  end

  test "service fields and git are passed through" do
    git = %{head: %{id: "abc123", message: "msg \"quoted\""}, branch: "main"}

    doc =
      decode(Fx.stats(),
        service_name: "github",
        service_job_id: "42",
        git: git,
        include_source: false,
        unrelated: :ignored
      )

    assert doc["service_name"] == "github"
    assert doc["service_job_id"] == "42"

    assert doc["git"] == %{
             "head" => %{"id" => "abc123", "message" => "msg \"quoted\""},
             "branch" => "main"
           }

    refute Map.has_key?(doc, "unrelated")
    refute Map.has_key?(hd(doc["source_files"]), "source")
  end
end
