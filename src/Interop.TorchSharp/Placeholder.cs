namespace Compiled.Nets.Interop; public static class Placeholder {}
