// autochip core buffer: simple dual-port RAM (one write port, one registered read port with
// read enable; rd_data holds while re is low). Written so Yosys infers block RAM.
`default_nettype none
module core_ram #(
    parameter integer WIDTH = 8,
    parameter integer DEPTH = 256,
    parameter integer ADDR  = 8
) (
    input  wire             clk,
    input  wire             we,
    input  wire [ADDR-1:0]  wa,
    input  wire [WIDTH-1:0] wd,
    input  wire             re,
    input  wire [ADDR-1:0]  ra,
    output reg  [WIDTH-1:0] rd
);
    reg [WIDTH-1:0] mem [0:DEPTH-1];

    always @(posedge clk) begin
        if (we) begin
            mem[wa] <= wd;
        end
        if (re) begin
            rd <= mem[ra];
        end
    end
endmodule
`default_nettype wire
