Code.require_file("../../fixtures/report_app/report_fixture.exs", __DIR__)

defmodule LiveCov.Format.AnnotatedTest do
  use ExUnit.Case, async: true

  alias LiveCov.Format.Annotated
  alias LiveCov.ReportFixture, as: Fx

  test "cover-style listing of one file" do
    stats = Fx.stats()
    calc = Enum.find(stats.files, &(&1.filename == "lib/report_app/calc.ex"))
    out = calc |> Annotated.render_source(stats) |> IO.iodata_to_binary()

    assert out ==
             """
             File generated from #{calc.path} by LiveCov 2024-01-02T03:04:05Z

             ****************************************************************************

                     |  defmodule ReportApp.Calc do
                     |    @moduledoc "Arithmetic used by the report fixtures."
                     |  
                     |    def add(a, b) do
                  4..|      a + b
                     |    end
                     |  
                     |    def divide(_a, 0) do
                  0..|      {:error, :zero}
                     |    end
                     |  
                     |    def divide(a, b) do
                  2..|      {:ok, a / b}
                     |    end
                     |  
                     |    def sum(list) do
                  1..|      Enum.reduce(list, 0, &add/2)
                     |    end
                     |  end
             """
  end

  test "large counts use cover's narrower fills" do
    stats = %LiveCov.Stats{
      files: [
        %LiveCov.Stats.Source{
          filename: "x.ex",
          path: "/x.ex",
          source: [
            %LiveCov.Stats.Line{coverage: 999_999, source: "a"},
            %LiveCov.Stats.Line{coverage: 1_234_567, source: "b"},
            %LiveCov.Stats.Line{coverage: 12_345_678, source: "c"}
          ]
        }
      ],
      generated_at: ~U[2024-01-01 00:00:00Z]
    }

    out = stats |> Annotated.render([]) |> IO.iodata_to_binary()
    assert out =~ "999999..|  a\n1234567.|  b\n12345678|  c\n"
  end

  test "render covers every file; render_files gives one safe path per file" do
    stats = Fx.stats_with_missing()
    all = stats |> Annotated.render([]) |> IO.iodata_to_binary()
    assert length(Regex.scan(~r/^File generated from/m, all)) == 5
    assert all =~ "gone.ex by LiveCov 2024-01-02T03:04:05Z (source file missing"

    files = Annotated.render_files(stats, [])

    assert Enum.map(files, &elem(&1, 0)) == [
             "annotated/lib/report_app/calc.ex.COVER.out",
             "annotated/lib/report_app/gone.ex.COVER.out",
             "annotated/lib/report_app/ignored.ex.COVER.out",
             "annotated/lib/report_app/shapes.ex.COVER.out",
             "annotated/src/report_app_erl.erl.COVER.out"
           ]
  end

  test "paths never escape the output directory" do
    assert Annotated.safe_relative("/abs/../x.ex") == "abs/x.ex"
    assert Annotated.safe_relative("../../etc/passwd") == "etc/passwd"
  end
end
