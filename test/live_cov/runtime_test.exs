defmodule LiveCov.RuntimeTest do
  use ExUnit.Case, async: true

  alias LiveCov.Runtime

  test "the cover generation follows the compiler's sys_coverage (OTP 27+)" do
    release = Runtime.otp_release()
    assert release == :erlang.system_info(:otp_release) |> List.to_integer()
    assert Runtime.sys_coverage?() == release >= 27
    assert Runtime.generation() == if(release >= 27, do: :otp27, else: :otp25)
  end

  test "native coverage is the runtime's code:coverage_support/0 (false before OTP 27)" do
    expected =
      function_exported?(:code, :coverage_support, 0) and
        apply(:code, :coverage_support, []) == true

    assert Runtime.native_coverage?() == expected
    if Runtime.otp_release() < 27, do: refute(Runtime.native_coverage?())
  end
end
