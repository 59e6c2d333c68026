// autochip core wide buffer: simple dual-port RAM of BYTES-byte words with a byte-enable write
// port (one bit per byte of the word) and one registered read port with read enable (rd holds
// while re is low). The DMA fills or drains one AXI bus word per cycle; the core's datapath
// selects the bytes it needs from the word it read. Written so Yosys infers block RAM with
// byte enables.
`default_nettype none
module core_wram #(
    parameter integer BYTES = 4,
    parameter integer DEPTH = 256,
    parameter integer ADDR  = 8
) (
    input  wire               clk,
    input  wire [BYTES-1:0]   we,
    input  wire [ADDR-1:0]    wa,
    input  wire [8*BYTES-1:0] wd,
    input  wire               re,
    input  wire [ADDR-1:0]    ra,
    output reg  [8*BYTES-1:0] rd
);
    reg [8*BYTES-1:0] mem [0:DEPTH-1];
    integer b;

    // The read comes first and the write is a blocking assignment: mem is read only here, so
    // the read sees the old word either way (read-before-write, as with non-blocking writes).
    // (Verilator: a non-blocking write of each byte keeps a value, address and flag per byte,
    // cleared and tested every cycle, written or not.)
    /* verilator lint_off BLKSEQ */
    always @(posedge clk) begin
        if (re) begin
            rd <= mem[ra];
        end
        // the byte loop only when some byte is written (Verilator cannot unroll a wide
        // word's loop, and would run it every cycle)
        if (|we) begin
            for (b = 0; b < BYTES; b = b + 1) begin
                if (we[b]) begin
                    mem[wa][8*b +: 8] = wd[8*b +: 8];
                end
            end
        end
    end
    /* verilator lint_on BLKSEQ */
endmodule
`default_nettype wire
