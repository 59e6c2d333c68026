// autochip core control registers on AXI4-Lite (32-bit data, byte address, 8-bit space):
//   0x00 CTRL      write bit 0 = 1: start the program (ignored while busy)
//   0x04 STATUS    bit 0 busy, bit 1 done (set at the end of a run, cleared by start)
//   0x08 PROG_ADDR DRAM byte address of the first layer descriptor
//   0x0C CYCLES    clock cycles from start to done of the last (or current) run
//   0x10 LAYERS    descriptors completed in the last (or current) run
// Writes take AW and W together; one outstanding transaction; responses are OKAY.
`default_nettype none
module core_axil (
    input  wire        clk,
    input  wire        rst,
    input  wire [7:0]  s_awaddr,
    input  wire        s_awvalid,
    output wire        s_awready,
    input  wire [31:0] s_wdata,
    input  wire [3:0]  s_wstrb,
    input  wire        s_wvalid,
    output wire        s_wready,
    output wire [1:0]  s_bresp,
    output reg         s_bvalid,
    input  wire        s_bready,
    input  wire [7:0]  s_araddr,
    input  wire        s_arvalid,
    output wire        s_arready,
    output reg  [31:0] s_rdata,
    output wire [1:0]  s_rresp,
    output reg         s_rvalid,
    input  wire        s_rready,
    output reg         start,
    output reg  [31:0] prog_addr,
    input  wire        busy,
    input  wire        done,
    input  wire [31:0] cycles,
    input  wire [31:0] layers
);
    wire wr = s_awvalid & s_wvalid & ~s_bvalid;
    wire rd = s_arvalid & ~s_rvalid;

    assign s_awready = wr;
    assign s_wready  = wr;
    assign s_bresp   = 2'b00;
    assign s_arready = rd;
    assign s_rresp   = 2'b00;

    wire unused_ok = &{1'b0, s_wstrb, s_awaddr[1:0], s_araddr[1:0]};

    always @(posedge clk) begin
        if (rst) begin
            s_bvalid  <= 1'b0;
            s_rvalid  <= 1'b0;
            s_rdata   <= 32'd0;
            start     <= 1'b0;
            prog_addr <= 32'd0;
        end else begin
            start <= 1'b0;
            if (wr) begin
                s_bvalid <= 1'b1;
                if (s_awaddr[7:2] == 6'd0) begin
                    start <= s_wdata[0] & ~busy;
                end else if (s_awaddr[7:2] == 6'd2) begin
                    prog_addr <= s_wdata;
                end
            end else if (s_bready) begin
                s_bvalid <= 1'b0;
            end
            if (rd) begin
                s_rvalid <= 1'b1;
                case (s_araddr[7:2])
                    6'd1:    s_rdata <= {30'd0, done, busy};
                    6'd2:    s_rdata <= prog_addr;
                    6'd3:    s_rdata <= cycles;
                    6'd4:    s_rdata <= layers;
                    default: s_rdata <= 32'd0;
                endcase
            end else if (s_rready) begin
                s_rvalid <= 1'b0;
            end
        end
    end
endmodule
`default_nettype wire
