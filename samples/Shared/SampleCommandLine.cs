using System.CommandLine;
using Compiled.Nets.Gpu;

namespace Compiled.Nets.Samples;

/// <summary>What the training samples share on their command line: options checked before anything runs, bad input
/// as one line and exit code 1, and the device a user asked for.</summary>
internal static class SampleCommandLine
{
    /// <summary>Makes a value <paramref name="valid"/> rejects a parse error: "--name must be {what}, got {value}."</summary>
    public static void Check<T>(Option<T> option, Func<T, bool> valid, string what) => option.Validators.Add(r =>
    {
        T value;
        try { value = r.GetValueOrDefault<T>(); }
        catch (InvalidOperationException) { return; } // not a number at all: the parser reports that itself
        if (!valid(value)) r.AddError($"{option.Name} must be {what}, got {value}.");
    });

    /// <summary>Runs the sample; bad input (missing or malformed data, an unwritable output folder, an impossible
    /// combination of options, a device that is not there) prints one line and exits with 1, not a stack trace.</summary>
    public static Func<ParseResult, int> Guarded(Func<ParseResult, int> run) => parse =>
    {
        try { return run(parse); }
        catch (Exception e) when (e is InvalidDataException or FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException or ArgumentException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    };

    /// <summary>--tf32: with a GPU device, cuBLAS's matmuls may use TF32 tensor cores (<see cref="MatmulPrecision.High"/>).</summary>
    public static Option<bool> Tf32Option() =>
        new("--tf32") { Description = "With --device gpu/auto: let cuBLAS's matmuls use TF32 tensor cores (PyTorch's allow_tf32; about 1e-3 relative per product, several times faster on Ampere or newer)" };

    /// <summary>The device asked for; no GPU where one was asked for is the user's input, not a defect: one line, as other bad input.
    /// <paramref name="kind"/> "cpu" opens none; <paramref name="tf32"/> then is an error, as it changes nothing there.</summary>
    public static GpuDevice? OpenDevice(string kind, bool tf32)
    {
        if (kind == "cpu")
            return tf32 ? throw new ArgumentException("--tf32 applies to a GPU's matmuls; add --device gpu (or auto).") : null;
        GpuDevice device;
        try { device = GpuDevice.Open(kind); }
        catch (InvalidOperationException e) { throw new ArgumentException(e.Message, e); }
        if (tf32) device.MatmulPrecision = MatmulPrecision.High;
        return device;
    }
}
