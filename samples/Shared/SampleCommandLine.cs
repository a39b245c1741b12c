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

    /// <summary>The device asked for; no GPU where one was asked for is the user's input, not a defect: one line, as other bad input.</summary>
    public static GpuDevice OpenDevice(string kind)
    {
        try { return GpuDevice.Open(kind); }
        catch (InvalidOperationException e) { throw new ArgumentException(e.Message, e); }
    }
}
