<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:map="http://www.w3.org/2005/xpath-functions/map" xmlns:f="urn:drehscheibe:test:f" exclude-result-prefixes="#all">
  <!-- IBAN check digits (ISO 13616, mod 97) with xsl:function and recursion over digit chunks. -->
  <xsl:function name="f:mod97" as="xs:integer">
    <xsl:param name="digits" as="xs:string"/>
    <xsl:param name="rest" as="xs:integer"/>
    <xsl:sequence select="if ($digits = '') then $rest
                          else f:mod97(substring($digits, 8), xs:integer($rest || substring($digits, 1, 7)) mod 97)"/>
  </xsl:function>
  <xsl:function name="f:iban-valid" as="xs:boolean">
    <xsl:param name="iban" as="xs:string"/>
    <xsl:variable name="s" select="upper-case(replace($iban, '\s', ''))"/>
    <xsl:variable name="moved" select="substring($s, 5) || substring($s, 1, 4)"/>
    <xsl:variable name="digits" select="string-join(for $c in string-to-codepoints($moved) return if ($c ge 65) then string($c - 55) else codepoints-to-string($c))"/>
    <xsl:sequence select="matches($s, '^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$') and f:mod97($digits, 0) = 1"/>
  </xsl:function>
  <xsl:template match="/adressen">
    <ibans>
      <xsl:for-each select="adresse">
        <iban id="{@id}" gueltig="{f:iban-valid(iban)}"/>
      </xsl:for-each>
    </ibans>
  </xsl:template>
</xsl:stylesheet>
