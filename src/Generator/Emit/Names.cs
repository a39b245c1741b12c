namespace Compiled.Nets.Generator.Emit
{
    /// <summary>Fully qualified prefixes the emitted code uses, so generated files compile whatever the user imports.</summary>
    internal static class Names
    {
        public const string Runtime = "global::Compiled.Nets.";
        public const string Kernels = "global::Compiled.Nets.Kernels.";
        public const string Elementwise = "global::Compiled.Nets.Kernels.Elementwise";
        public const string Vector512 = "global::System.Runtime.Intrinsics.Vector512";
        public const string Vector256 = "global::System.Runtime.Intrinsics.Vector256";
        public const string MemoryMarshal = "global::System.Runtime.InteropServices.MemoryMarshal";
        public const string Unsafe = "global::System.Runtime.CompilerServices.Unsafe";
        public const string OnnxGraph = "global::Compiled.Nets.Serialization.OnnxGraph";
        public const string Gpu = "global::Compiled.Nets.Gpu.";
    }
}
