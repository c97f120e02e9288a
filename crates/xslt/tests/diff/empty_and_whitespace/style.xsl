<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/">
    <r>
      <empty></empty>
      <ws>   </ws>
      <txt><xsl:text>   </xsl:text></txt>
      <v><xsl:value-of select="''"/></v>
      <sp xml:space="preserve">  <x/>  </sp>
    </r>
  </xsl:template>
</xsl:stylesheet>
